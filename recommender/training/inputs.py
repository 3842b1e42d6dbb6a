"""Turning a DataBundle into model inputs, and fitting the hybrid the one way it is fitted.

The benchmark and ``recommender train`` both call :func:`fit_hybrid`, so the model that is
evaluated is the model that is served.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.bands import BAND_NAMES, AgeBands
from features.courses import CourseFeatures
from features.event_log import resolve_cutoff
from features.frames import DataBundle
from features.ids import IdMapping
from features.interactions import InteractionMatrix
from features.tables import split_multi, user_ages
from models.hybrid import HybridRanker
from recommender.evaluation.metrics import evaluate, relevance_matrix
from recommender.evaluation.protocols import Split

# Users' columns that are identifiers or dates, never profile attributes.
_NOT_ATTRIBUTES = {"user_id", "resident_id", "household_id", "registered_at"}
# A profile attribute has a few values (gender, region, education band), not one per user.
MAX_ATTRIBUTE_VALUES = 64


@dataclass
class Vocabulary:
    """Codes shared by training and serving: category and community names <-> ints, and the
    values of the users' categorical profile columns (``attributes``: column -> sorted values).
    """

    categories: np.ndarray
    communities: np.ndarray
    attributes: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_bundle(cls, bundle: DataBundle) -> Vocabulary:
        cats = _distinct(bundle.items, "category")
        comms = np.union1d(_distinct(bundle.users, "community_id"),
                           _distinct(bundle.items, "community_id"))
        return cls(cats, comms, profile_attributes(bundle.users))

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Vocabulary:
        """The inverse of :meth:`to_arrays`."""
        attributes = {k[len("attr__"):]: v for k, v in arrays.items() if k.startswith("attr__")}
        return cls(arrays["categories"], arrays["communities"], attributes)

    def attribute_codes(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, n_attributes) codes of ``frame``'s attribute columns (-1: missing/unknown)."""
        out = np.full((len(frame), len(self.attributes)), -1, dtype=np.int64)
        for a, (name, values) in enumerate(self.attributes.items()):
            if name in frame:
                out[:, a] = _codes(frame[name], values)
        return out

    def profile_codes(self, profile: dict) -> np.ndarray:
        """(1, n_attributes) codes of one profile (column -> value), for a serving request."""
        out = np.full((1, len(self.attributes)), -1, dtype=np.int64)
        for a, (name, values) in enumerate(self.attributes.items()):
            value = profile.get(name)
            if value is not None and len(values):
                pos = int(np.searchsorted(values, str(value)))
                if pos < len(values) and values[pos] == str(value):
                    out[0, a] = pos
        return out

    def category_codes(self, values) -> np.ndarray:
        return _codes(values, self.categories)

    def community_codes(self, values) -> np.ndarray:
        return _codes(values, self.communities)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"categories": self.categories, "communities": self.communities,
                **{f"attr__{k}": v for k, v in self.attributes.items()}}


def profile_attributes(users: pd.DataFrame) -> dict[str, np.ndarray]:
    """The users' categorical profile columns and their values: text columns other than ids
    and dates with 2 to ``MAX_ATTRIBUTE_VALUES`` distinct values (gender, region, ...)."""
    out = {}
    for column in users.columns:
        values = users[column]
        if column in _NOT_ATTRIBUTES or pd.api.types.is_numeric_dtype(values) or (
                pd.api.types.is_datetime64_any_dtype(values)) or pd.api.types.is_bool_dtype(
                values):
            continue
        distinct = _distinct(users, column)
        if 2 <= len(distinct) <= MAX_ATTRIBUTE_VALUES:
            out[str(column)] = distinct
    return out


@dataclass
class ModelInputs:
    """The matrix and side arrays the hybrid and the baselines are fitted on."""

    X: sp.csr_matrix
    user_band: np.ndarray
    user_community: np.ndarray
    user_attributes: np.ndarray
    item_category: np.ndarray
    item_bands: np.ndarray
    item_community: np.ndarray
    item_features: sp.csr_matrix
    item_temporal: np.ndarray
    cutoff: pd.Timestamp

    def side(self) -> dict:
        return {
            "user_band": self.user_band, "user_community": self.user_community,
            "user_attributes": self.user_attributes, "item_category": self.item_category,
            "item_bands": self.item_bands,
            "item_community": self.item_community, "item_features": self.item_features,
            "item_temporal": self.item_temporal,
        }


_BAND_CODE = {name: code for code, name in enumerate(BAND_NAMES)}


def with_categorical_ids(bundle: DataBundle) -> DataBundle:
    """The bundle with its interaction ids as pandas categoricals (same values).

    Training looks the 10M-row id columns up several times (event encoding at two cuts, the
    splits, item activity, the data hash); on categoricals each lookup touches only the
    distinct ids, which cut a district-scale retrain by ~30 s.
    """
    inter = bundle.interactions
    if all(isinstance(inter[c].dtype, pd.CategoricalDtype) for c in ("user_id", "item_id")):
        return bundle
    inter = inter.assign(user_id=inter["user_id"].astype("category"),
                         item_id=inter["item_id"].astype("category"))
    return bundle.with_interactions(inter)


def band_codes(bands) -> np.ndarray:
    """Band names -> their position in ``BAND_NAMES`` (-1 for unknown or missing).

    A dict lookup: serving calls it per request, where pandas-based coding costs ~0.5 ms."""
    return np.fromiter((_BAND_CODE.get(b, -1) if isinstance(b, str) else -1 for b in bands),
                       dtype=np.int64)


def model_inputs(bundle: DataBundle, mapping: IdMapping, vocab: Vocabulary, cutoff=None,
                 content: CourseFeatures | None = None) -> ModelInputs:
    """Everything the models read, built from events at or before ``cutoff``."""
    matrix = InteractionMatrix(id_mapping=mapping, cutoff=cutoff)
    X = matrix.fit_transform(bundle)
    cut = matrix.cutoff_
    users = bundle.users
    uidx = mapping.user_index(users["user_id"])
    ok = uidx >= 0
    # The features' band rule: birth year at the cut, else a declared band.
    user_band = user_ages(users, mapping, cut, AgeBands())[1].astype(np.int64)
    user_comm = np.full(mapping.n_users, -1, dtype=np.int64)
    if "community_id" in users:
        user_comm[uidx[ok]] = vocab.community_codes(users["community_id"])[ok]
    user_attrs = np.full((mapping.n_users, len(vocab.attributes)), -1, dtype=np.int64)
    user_attrs[uidx[ok]] = vocab.attribute_codes(users)[ok]
    items = bundle.items
    iidx = mapping.item_index(items["item_id"])
    iok = iidx >= 0
    item_cat = np.full(mapping.n_items, -1, dtype=np.int64)
    item_comm = np.full(mapping.n_items, -1, dtype=np.int64)
    item_bands = np.zeros((mapping.n_items, len(BAND_NAMES)), dtype=bool)
    if "category" in items:
        item_cat[iidx[iok]] = vocab.category_codes(items["category"])[iok]
    if "community_id" in items:
        item_comm[iidx[iok]] = vocab.community_codes(items["community_id"])[iok]
    if "target_bands" in items:
        targets = split_multi(items["target_bands"])
        for b, name in enumerate(BAND_NAMES):
            has = targets.map(lambda parts, n=name: n in parts).to_numpy(dtype=bool)
            item_bands[iidx[iok], b] = has[iok]
    if content is None:
        content = CourseFeatures(id_mapping=mapping).fit(bundle)
    return ModelInputs(X, user_band, user_comm, user_attrs, item_cat, item_bands, item_comm,
                       content.content_matrix(bundle), item_temporal(bundle, mapping, cut), cut)


def item_temporal(bundle: DataBundle, mapping: IdMapping, cutoff: pd.Timestamp,
                  recent_fraction: float = 0.05) -> np.ndarray:
    """Per item: log interactions in the recent window, days since first and last interaction.

    What people take up next is mostly what is running now: a validation cut and a test cut
    see different items trending, and all-time counts cannot tell the two apart. The window is
    a fraction of the data's time span (so it suits a 14-month district and a 3-year dataset).
    Items never seen before the cut get -1 days.
    """
    inter = bundle.interactions
    ts = inter["timestamp"]
    before = (ts <= cutoff).to_numpy()
    items = mapping.item_index(inter["item_id"][before])
    days = ((cutoff - ts[before]).dt.total_seconds() / 86400.0).to_numpy()
    ok = items >= 0
    items, days = items[ok], days[ok]
    n = mapping.n_items
    span = float(days.max(initial=0.0))
    window = max(span * recent_fraction, 1.0)
    recent = np.bincount(items, weights=(days <= window).astype(float), minlength=n)
    first = np.full(n, -1.0)
    last = np.full(n, -1.0)
    if items.size:
        order = np.argsort(days, kind="stable")
        # np.maximum.at / minimum.at give each item's oldest and newest interaction
        np.maximum.at(first, items, days)
        last_days = np.full(n, np.inf)
        np.minimum.at(last_days, items[order], days[order])
        last = np.where(np.isfinite(last_days), last_days, -1.0)
    return np.column_stack([np.log1p(recent), first, last]).astype(np.float32)


def target_matrix(split: Split, mapping: IdMapping) -> sp.csr_matrix:
    """The split's relevant test pairs as a users x items 0/1 matrix on ``mapping``."""
    return relevance_matrix(split.test_relevant, mapping.user_ids_, mapping.item_ids_)


def fit_hybrid(train: DataBundle, validation: Split, mapping: IdMapping, vocab: Vocabulary,
               params: dict | None = None, seed: int = 0) -> tuple[HybridRanker, ModelInputs,
                                                                    dict]:
    """Fit the hybrid on ``train``, its re-ranker on ``validation`` (a split of ``train``).

    Returns the model, the full-training inputs it was fitted on, and timings.
    """
    t0 = time.perf_counter()
    content = CourseFeatures(id_mapping=mapping).fit(train)
    full = model_inputs(train, mapping, vocab, content=content)
    val = model_inputs(validation.train, mapping, vocab, cutoff=resolve_cutoff(
        validation.train.interactions), content=content)
    target = target_matrix(validation, mapping)
    t1 = time.perf_counter()
    model = HybridRanker(random_state=seed, **(params or {}))
    model.fit(full.X, validation=(val.X, target, val.item_temporal), **full.side())
    t2 = time.perf_counter()
    info = {"features_s": t1 - t0, "fit_s": t2 - t1,
            "validation_metrics": holdout_metrics(model, target)}
    return model, full, info


def holdout_metrics(model: HybridRanker, target: sp.csr_matrix) -> dict:
    """Validation figures of a fitted hybrid on the validation users its trees never saw,
    next to popularity-by-band on the same users (empty when there were too few users)."""
    users = np.asarray(model.holdout_users_, dtype=np.int64)
    if users.size == 0:
        return {}
    relevant = target[users]
    n_items = target.shape[1]
    hybrid = evaluate(model.holdout_recs_, relevant, n_items)
    popularity = evaluate(model.holdout_popularity_recs_, relevant, n_items)
    keys = ("ndcg@10", "precision@10", "recall@10", "map@10", "coverage")
    return {"users": int(users.size),
            "hybrid": {k: float(hybrid[k]) for k in keys},
            "popularity_by_band": {k: float(popularity[k]) for k in keys}}


def _distinct(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.array([], dtype=str)
    values = frame[column].dropna().astype(str)
    return np.array(sorted(values.unique()), dtype=str)


def _codes(values, vocabulary: np.ndarray) -> np.ndarray:
    """Positions of ``values`` in ``vocabulary``, which must be sorted (-1 when absent)."""
    values = np.asarray(pd.Series(values, dtype=object).where(pd.notna(values), ""), dtype=str)
    if len(vocabulary) == 0 or values.size == 0:
        return np.full(values.size, -1, dtype=np.int64)
    pos = np.searchsorted(vocabulary, values)
    pos = np.clip(pos, 0, len(vocabulary) - 1)
    return np.where(vocabulary[pos] == values, pos, -1).astype(np.int64)
