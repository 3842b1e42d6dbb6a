"""The one feature pipeline: every array the models read, from a DataBundle at a cut-off.

``recommender train``, the benchmark and the served artifact all take their inputs from
:class:`FeaturePipeline`: ``fit`` it once on the whole dataset (ids, vocabularies, the content
vectorizer: nothing there depends on when events happened), then ``transform`` a training part
into :class:`ModelInputs` with events at or before its cut-off only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.bands import BAND_NAMES, AgeBands
from features.codes import Vocabulary
from features.courses import CONTENT_COLUMNS, CourseFeatures
from features.event_log import encode_events, pair_age_matrix, resolve_cutoff
from features.frames import DataBundle
from features.ids import IdMapping
from features.interactions import InteractionMatrix
from features.tables import aligned, multi_hot, split_multi, user_ages

__all__ = ["FeaturePipeline", "ModelInputs", "item_temporal"]

log = logging.getLogger(__name__)

_OPTIONAL = {
    "interactions": ("event", "weight", "value"),
    "users": ("birth_year", "age_band", "community_id"),
    "items": (*CONTENT_COLUMNS, "community_id"),
}


@dataclass
class ModelInputs:
    """The interaction matrix and side arrays the hybrid and the baselines are fitted on.

    Users' arrays have one row per user index and items' arrays one per item index of the
    pipeline's id mapping; codes are -1 where unknown.

    Attributes
    ----------
    X : csr_matrix (n_users, n_items), float32
        Confidence of each (user, item) pair from events at or before ``cutoff``.
    user_band, user_community : ndarray of int64
        Age band at the cut-off (into ``BAND_NAMES``) and community (into the vocabulary).
    user_attributes : ndarray of int64, shape (n_users, n_attributes)
        Codes of the profile attribute columns of :class:`features.codes.Vocabulary`.
    item_category, item_community : ndarray of int64
    item_bands : ndarray of bool, shape (n_items, 4)
        The bands each course targets.
    item_features : csr_matrix, float32
        The content matrix (:meth:`features.courses.CourseFeatures.content_matrix`).
    item_temporal : ndarray of float32, shape (n_items, 3)
        :func:`item_temporal` at the cut-off.
    cutoff : pandas.Timestamp
    pair_age : csr_matrix (n_users, n_items), float32, or None
        Days from each pair's latest event to the cut-off
        (:func:`features.event_log.pair_age_matrix`), when the pipeline was asked for it
        (``FeaturePipeline(pair_ages=True)``): what recent-window popularity counts.
    text_columns : int
        How many of ``item_features``' columns, the first ones, are its text block
        (:attr:`features.courses.CourseFeatures.n_text_features`).
    """

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
    pair_age: sp.csr_matrix | None = None
    text_columns: int = 0

    @property
    def item_metadata(self) -> sp.csr_matrix:
        """The content matrix without its text block: category, target bands, tags and fee
        tier, a few columns per item where the title's character n-grams are dozens."""
        return self.item_features[:, self.text_columns:]

    def side(self) -> dict:
        """The side arrays as keyword arguments of ``HybridRanker.fit``."""
        return {
            "user_band": self.user_band, "user_community": self.user_community,
            "user_attributes": self.user_attributes, "item_category": self.item_category,
            "item_bands": self.item_bands,
            "item_community": self.item_community, "item_features": self.item_features,
            "item_metadata": self.item_metadata, "item_temporal": self.item_temporal,
        }


class FeaturePipeline:
    """Fit ids, vocabularies and the content vectorizer once; build model inputs at any cut-off.

    Parameters
    ----------
    id_mapping : IdMapping, optional
        None: fit one on all ids of the bundle given to ``fit``, so that users and courses first
        seen after a training cut keep their index (as candidates and as test users).
    vocabulary : Vocabulary, optional
        None: from the users and items tables of the bundle given to ``fit``.
    event_weights : dict, optional
        Overrides of the event weights (:class:`features.interactions.InteractionMatrix`).
    half_life_days : float, optional
        Time decay of the interaction matrix (None: no decay).
    age_bands : AgeBands, optional
        Band edges of ``user_band`` (default ``AgeBands()``).
    content_params : dict, optional
        Keyword arguments of :class:`features.courses.CourseFeatures`.
    recent_fraction : float, default 0.05
        Window of :func:`item_temporal`'s recent activity, as a share of the data's time span.
    pair_ages : bool, default False
        Also build :attr:`ModelInputs.pair_age` (a sort of the event log per cut-off, about 2 s
        per 10 million events: only the benchmark's recent-window popularity reads it).

    Attributes
    ----------
    id_mapping_ : IdMapping
    vocabulary_ : Vocabulary
    courses_ : CourseFeatures
        The fitted content vectorizer and vocabularies.
    skipped_ : list of str
        Optional columns the bundle lacked, e.g. ``["users.birth_year", "items.description"]``.
    timings_ : dict of str to float
        Seconds per step since ``fit`` (the steps of several ``transform`` calls add up).
    """

    def __init__(
        self,
        id_mapping: IdMapping | None = None,
        vocabulary: Vocabulary | None = None,
        event_weights: dict[str, float] | None = None,
        half_life_days: float | None = None,
        age_bands: AgeBands | None = None,
        content_params: dict | None = None,
        recent_fraction: float = 0.05,
        pair_ages: bool = False,
    ):
        self.id_mapping = id_mapping
        self.vocabulary = vocabulary
        self.event_weights = event_weights
        self.half_life_days = half_life_days
        self.age_bands = age_bands
        self.content_params = content_params
        self.recent_fraction = recent_fraction
        self.pair_ages = pair_ages

    def _timed(self, step: str, fn, *args):
        start = time.perf_counter()
        result = fn(*args)
        self.timings_[step] = self.timings_.get(step, 0.0) + time.perf_counter() - start
        return result

    def fit(self, bundle: DataBundle) -> FeaturePipeline:
        """Fix the id mapping, the vocabularies and the content vectorizer; returns self."""
        if not 0.0 < self.recent_fraction <= 1.0:
            raise ValueError(f"recent_fraction must be in (0, 1], got {self.recent_fraction!r}")
        self.timings_ = {}
        self.id_mapping_ = self.id_mapping
        if self.id_mapping_ is None:
            self.id_mapping_ = self._timed("ids", IdMapping().fit, bundle)
        self.vocabulary_ = self.vocabulary
        if self.vocabulary_ is None:
            self.vocabulary_ = self._timed("vocabulary", Vocabulary.from_bundle, bundle)
        courses = CourseFeatures(id_mapping=self.id_mapping_, **(self.content_params or {}))
        self.courses_ = self._timed("content_fit", courses.fit, bundle)
        self.skipped_ = _skipped(bundle)
        log.info("features for %r: %d users x %d items; skipped: %s", bundle.name,
                 self.id_mapping_.n_users, self.id_mapping_.n_items,
                 ", ".join(self.skipped_) or "nothing")
        return self

    def transform(self, bundle: DataBundle, cutoff=None, *,
                  same_items: ModelInputs | None = None) -> ModelInputs:
        """Model inputs from ``bundle`` with events at or before ``cutoff``.

        Parameters
        ----------
        bundle : DataBundle
            E.g. a split's training part; its users and items tables give the side arrays.
        cutoff : timestamp-like, optional
            None: the latest interaction timestamp of ``bundle``.
        same_items : ModelInputs, optional
            Inputs this pipeline made from a bundle with the same items table (a split's
            training part shares its whole's): their item codes and content rows are reused
            instead of running the text vectorizer over every course again.
        """
        mapping = self.id_mapping_
        cut = resolve_cutoff(bundle.interactions, cutoff)
        events = self._timed("encode_events", encode_events, bundle.interactions, mapping, cut)
        if events.n_dropped_unknown:
            log.info("%d interactions at or before %s have ids unknown to the mapping",
                     events.n_dropped_unknown, cut)
        matrix = InteractionMatrix(event_weights=self.event_weights, cutoff=cut,
                                   half_life_days=self.half_life_days, id_mapping=mapping)
        X = self._timed("interaction_matrix", matrix.fit_transform, bundle, events)
        band, community, attributes = self._timed("user_codes", self._user_codes, bundle.users,
                                                  cut)
        if same_items is None:
            category, bands, item_community = self._timed("item_codes", self._item_codes,
                                                          bundle.items)
            content = self._timed("content_matrix", self.courses_.content_matrix, bundle)
        else:
            category, bands = same_items.item_category, same_items.item_bands
            item_community, content = same_items.item_community, same_items.item_features
        temporal = self._timed("item_temporal", item_temporal, bundle, mapping, cut,
                               self.recent_fraction)
        ages = self._timed("pair_ages", pair_age_matrix, events) if self.pair_ages else None
        return ModelInputs(X, band, community, attributes, category, bands, item_community,
                           content, temporal, cut, ages,
                           text_columns=self.courses_.n_text_features)

    def fit_transform(self, bundle: DataBundle, cutoff=None) -> ModelInputs:
        """``fit(bundle).transform(bundle, cutoff)``."""
        return self.fit(bundle).transform(bundle, cutoff)

    def _user_codes(self, users: pd.DataFrame, cutoff: pd.Timestamp) -> tuple:
        """Band at the cut-off, community and profile attribute codes per user index."""
        mapping, vocab = self.id_mapping_, self.vocabulary_
        # The band rule of the features: birth year at the cut, else a declared band.
        band = user_ages(users, mapping, cutoff, self.age_bands or AgeBands())[1]
        idx, rows = aligned(users, "user_id", mapping.user_index)
        community = np.full(mapping.n_users, -1, dtype=np.int64)
        if "community_id" in rows:
            community[idx] = vocab.community_codes(rows["community_id"])
        attributes = np.full((mapping.n_users, len(vocab.attributes)), -1, dtype=np.int64)
        attributes[idx] = vocab.attribute_codes(rows)
        return band.astype(np.int64), community, attributes

    def _item_codes(self, items: pd.DataFrame) -> tuple:
        """Category code, targeted bands and community code per item index."""
        mapping, vocab = self.id_mapping_, self.vocabulary_
        n = mapping.n_items
        idx, rows = aligned(items, "item_id", mapping.item_index)
        category = np.full(n, -1, dtype=np.int64)
        community = np.full(n, -1, dtype=np.int64)
        bands = np.zeros((n, len(BAND_NAMES)), dtype=bool)
        if "category" in rows:
            category[idx] = vocab.category_codes(rows["category"])
        if "community_id" in rows:
            community[idx] = vocab.community_codes(rows["community_id"])
        if "target_bands" in rows:
            bands[idx] = multi_hot(split_multi(rows["target_bands"]), BAND_NAMES).toarray() > 0
        return category, bands, community


def _skipped(bundle: DataBundle) -> list[str]:
    """The optional columns the pipeline reads that ``bundle`` lacks."""
    skipped = [f"{table}.{c}" for table, columns in _OPTIONAL.items()
               for c in columns if c not in getattr(bundle, table)]
    users = bundle.users
    # An age gives the band as well as a birth year does, and either makes a declared band moot.
    if "age" in users or "birth_year" in users:
        moot = {"users.age_band", "users.birth_year"} if "age" in users else {"users.age_band"}
        skipped = [s for s in skipped if s not in moot]
    return skipped


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
    # pandas' total_seconds() (nanoseconds / 1e9) on the raw int64s: the same floats without a
    # Timedelta series of every event
    ago = pd.Timestamp(cutoff).as_unit("ns").asm8 - ts.to_numpy(dtype="datetime64[ns]")[before]
    days = ago.view(np.int64) / 1e9 / 86400.0
    ok = items >= 0
    items, days = items[ok], days[ok]
    n = mapping.n_items
    span = float(days.max(initial=0.0))
    window = max(span * recent_fraction, 1.0)
    recent = np.bincount(items, weights=(days <= window).astype(float), minlength=n)
    first = np.full(n, -1.0)  # days are >= 0, so the maximum replaces -1 wherever seen
    np.maximum.at(first, items, days)
    newest = np.full(n, np.inf)
    np.minimum.at(newest, items, days)
    last = np.where(np.isfinite(newest), newest, -1.0)
    return np.column_stack([np.log1p(recent), first, last]).astype(np.float32)
