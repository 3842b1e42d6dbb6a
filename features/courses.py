"""Course features as of a cut-off, and the sparse content matrix for content and cold start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from features.bands import BAND_NAMES, AgeBands
from features.event_log import EncodedEvents
from features.frames import DataBundle
from features.ids import IdMapping
from features.tables import (
    SLOTS,
    UNKNOWN,
    TableFeatures,
    aligned,
    codes_in,
    distinct_values,
    hour_slots,
    item_schedule,
    split_multi,
    str_column,
    user_ages,
)

__all__ = ["CharGrams", "CourseFeatures", "DEFAULT_BLOCK_WEIGHTS", "ITEM_OPTIONAL_COLUMNS"]

ITEM_OPTIONAL_COLUMNS = ("title", "description", "category", "tags", "target_bands",
                         "community_id", "street", "fee_tier", "capacity", "status",
                         "start_date", "weekday", "start_time")
# Relative weight of each block of the content matrix before rows are L2-normalised: text
# carries most of the signal; category, bands and tags sharpen it; fee tier only nudges.
DEFAULT_BLOCK_WEIGHTS = {"text": 1.0, "category": 0.5, "target_bands": 0.5, "tags": 0.5,
                         "fee_tier": 0.2}


class CharGrams:
    """Character n-grams within words (``analyzer="char_wb"``) minus whitespace-only grams.

    sklearn's ``char_wb`` pads each word with spaces, so its unigram ``" "`` occurs in every
    document and makes every pair of courses look alike; dropping it keeps unrelated Chinese and
    English titles orthogonal. A module-level class so the fitted vectorizer can be saved.
    """

    def __init__(self, ngram_range: tuple[int, int] = (1, 3)):
        self.ngram_range = tuple(ngram_range)

    def __call__(self, doc: str) -> list[str]:
        lo, hi = self.ngram_range
        grams: list[str] = []
        for word in str(doc).lower().split():
            padded = f" {word} "
            for n in range(lo, hi + 1):
                grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
        return [g for g in grams if g.strip()]


def _text(items: pd.DataFrame) -> pd.Series:
    parts = [items[c].fillna("").astype(str) for c in ("title", "description") if c in items]
    if "tags" in items:
        parts.append(items["tags"].fillna("").astype(str).str.replace("|", " ", regex=False))
    if not parts:
        return pd.Series([""] * len(items), index=items.index, dtype=object)
    text = parts[0]
    for p in parts[1:]:
        text = text + " " + p
    return text.str.strip()


def _normalize(m) -> sp.csr_matrix:
    """Row L2 normalisation that accepts zero columns and leaves all-zero rows at zero."""
    m = sp.csr_matrix(m, dtype=np.float64)
    return normalize(m) if m.shape[1] else m


def _one_hot(codes: np.ndarray, width: int) -> sp.csr_matrix:
    ok = codes >= 0
    return sp.csr_matrix(
        (np.ones(int(ok.sum()), dtype=np.float64), (np.flatnonzero(ok), codes[ok])),
        shape=(len(codes), width),
    )


def _multi_hot(lists: pd.Series, vocab: list[str]) -> sp.csr_matrix:
    pos = {t: j for j, t in enumerate(vocab)}
    rows, cols = [], []
    for r, values in enumerate(lists):
        for t in dict.fromkeys(values):
            if t in pos:
                rows.append(r)
                cols.append(pos[t])
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(lists), len(vocab)))


class CourseFeatures(TableFeatures):
    """One row of features per item index, and a content matrix for content-based models.

    Parameters
    ----------
    cutoff : timestamp-like, optional
        Popularity and fill rates use events at or before it. None: latest timestamp in ``fit``.
    age_bands : AgeBands, optional
        Bands of the residents counted in ``pop_<band>``.
    ngram_range : tuple of int, default (1, 3)
        Character n-grams within words (:class:`CharGrams`, sklearn's ``char_wb`` without
        whitespace-only grams) of title + description + tags, TF-IDF weighted: needs no
        tokenizer, so Chinese and English text both work.
    max_text_features : int, default 20000
    min_df : int, default 1
    max_tags : int, default 50
        ``tag_<tag>`` columns for the most frequent tags (ties broken alphabetically).
    block_weights : dict, optional
        Overrides of :data:`DEFAULT_BLOCK_WEIGHTS` for the content matrix.
    id_mapping : IdMapping, optional
        Shared mapping; None fits one on the bundle (ids seen up to the cut-off).

    Attributes
    ----------
    cutoff_, id_mapping_, skipped_
    categories_, fee_tiers_, tags_, target_bands_ : list of str
        Vocabularies of the one-/multi-hot columns and content blocks.
    user_communities_ : list of str
        Communities with a ``popc_<community>`` column (from ``users.community_id``).
    vectorizer_ : TfidfVectorizer or None
        None when no item has any text.
    content_feature_names_ : list of str

    Notes
    -----
    ``transform`` returns a DataFrame indexed by item index (``item_index``) with columns
    ``item_id, category, fee_tier, community_id, street, status, weekday, start_hour, slot,
    capacity, n_enrolled, fill_rate, tb_<band> x4, tag_<tag>..., n_events, n_users,
    pop_<band> x4, pop_unknown, popc_<community>...`` (``n_users`` and ``pop_*`` count distinct
    residents with a positive event; ``n_enrolled`` those whose enrolments outnumber their
    cancellations). Unknown text is ``"unknown"``, unknown weekday / hour -1; no NaN.
    """

    def __init__(
        self,
        cutoff=None,
        age_bands: AgeBands | None = None,
        ngram_range: tuple[int, int] = (1, 3),
        max_text_features: int = 20000,
        min_df: int = 1,
        max_tags: int = 50,
        block_weights: dict[str, float] | None = None,
        id_mapping: IdMapping | None = None,
    ):
        self.cutoff = cutoff
        self.age_bands = age_bands
        self.ngram_range = ngram_range
        self.max_text_features = max_text_features
        self.min_df = min_df
        self.max_tags = max_tags
        self.block_weights = block_weights
        self.id_mapping = id_mapping

    def _validate(self) -> None:
        lo_hi = tuple(self.ngram_range) if isinstance(self.ngram_range, tuple | list) else ()
        if len(lo_hi) != 2 or not all(isinstance(v, int) for v in lo_hi) or not (
            1 <= lo_hi[0] <= lo_hi[1]
        ):
            raise ValueError(f"ngram_range must be (min_n, max_n) with 1 <= min_n <= max_n, "
                             f"got {self.ngram_range!r}")
        for param in ("max_text_features", "min_df", "max_tags"):
            v = getattr(self, param)
            if not isinstance(v, int) or v < (0 if param == "max_tags" else 1):
                raise ValueError(f"{param} must be a positive int, got {v!r}")
        weights = dict(DEFAULT_BLOCK_WEIGHTS)
        for k, v in (self.block_weights or {}).items():
            if k not in weights or not isinstance(v, int | float) or v < 0:
                raise ValueError(f"block_weights[{k!r}] must be one of {sorted(weights)} with a "
                                 f"weight >= 0, got {v!r}")
            weights[k] = float(v)
        self.block_weights_ = weights

    def fit(self, bundle: DataBundle, events: EncodedEvents | None = None) -> CourseFeatures:
        """Learn the vocabularies and the TF-IDF vectorizer from ``bundle.items``."""
        self._fit(bundle, events)
        return self

    def _fit(self, bundle: DataBundle, events: EncodedEvents | None) -> EncodedEvents:
        events = self._begin_fit(bundle, events)
        items, users = bundle.items, bundle.users
        self.skipped_ = [f"items.{c}" for c in ITEM_OPTIONAL_COLUMNS if c not in items]
        if "weekday" in items or "start_date" in items:
            self.skipped_ = [s for s in self.skipped_ if s not in ("items.weekday",
                                                                   "items.start_date")]
        self.categories_ = distinct_values(items, "category")
        self.fee_tiers_ = distinct_values(items, "fee_tier")
        self.target_bands_ = list(BAND_NAMES)
        if "tags" in items:
            counts = pd.Series([t for ts in split_multi(items["tags"]) for t in ts]).value_counts()
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            self.tags_ = sorted(t for t, _ in ranked[: self.max_tags])
        else:
            self.tags_ = []
        self.user_communities_ = distinct_values(users, "community_id")
        text = _text(items)
        text = text[text != ""]
        self.vectorizer_ = None
        text_names: list[str] = []
        if len(text):
            vec = TfidfVectorizer(analyzer=CharGrams(tuple(self.ngram_range)),
                                  min_df=min(self.min_df, len(text)), sublinear_tf=True,
                                  max_features=self.max_text_features, dtype=np.float32)
            try:
                vec.fit(text)
                self.vectorizer_ = vec
                text_names = [f"text_{t}" for t in vec.get_feature_names_out()]
            except ValueError:  # only whitespace: no n-grams at all
                self.vectorizer_ = None
        self.content_feature_names_ = (
            text_names
            + [f"category_{c}" for c in self.categories_]
            + [f"tb_{b}" for b in self.target_bands_]
            + [f"tag_{t}" for t in self.tags_]
            + [f"fee_{f}" for f in self.fee_tiers_]
        )
        return events

    def transform(self, bundle: DataBundle, events: EncodedEvents | None = None) -> pd.DataFrame:
        """Feature frame with one row per item index of the mapping (see class Notes)."""
        ev = self._events(bundle, events)
        mapping, n = self.id_mapping_, self.id_mapping_.n_items
        idx, rows = aligned(bundle.items, "item_id", mapping.item_index)
        out: dict[str, np.ndarray] = {"item_id": mapping.item_ids_[:n].astype(object)}
        for col in ("category", "fee_tier", "community_id", "street", "status"):
            out[col] = str_column(rows, col, idx, n)
        weekday, hour = item_schedule(bundle.items, mapping)
        out["weekday"] = weekday
        out["start_hour"] = np.nan_to_num(hour, nan=-1.0)
        out["slot"] = np.asarray((*SLOTS, UNKNOWN), dtype=object)[hour_slots(hour)]
        capacity = np.zeros(n)
        if "capacity" in rows:
            cap = pd.to_numeric(rows["capacity"], errors="coerce").to_numpy(dtype=np.float64)
            capacity[idx] = np.clip(np.nan_to_num(cap, nan=0.0), 0, None)
        out["capacity"] = capacity

        # Net enrolment per (user, item): enrolled if enrolments outnumber cancellations.
        enr, can = ev.is_event("enroll"), ev.is_event("cancel")
        sel = enr | can
        net = sp.csr_matrix((np.where(enr[sel], 1.0, -1.0), (ev.user[sel], ev.item[sel])),
                            shape=(ev.n_users, n))
        net.sum_duplicates()
        enrolled = np.bincount(net.indices[net.data > 0], minlength=n)
        out["n_enrolled"] = enrolled.astype(np.int32)
        out["fill_rate"] = np.divide(enrolled, capacity, out=np.zeros(n), where=capacity > 0)

        tb = self._bands_matrix(rows, idx, n).toarray()
        for j, b in enumerate(self.target_bands_):
            out[f"tb_{b}"] = tb[:, j].astype(np.int8)
        tags = self._tags_matrix(rows, idx, n).toarray()
        for j, t in enumerate(self.tags_):
            out[f"tag_{t}"] = tags[:, j].astype(np.int8)

        out["n_events"] = np.bincount(ev.item, minlength=n).astype(np.int32)
        pos = ev.positive()
        seen = sp.csr_matrix((np.ones(int(pos.sum())), (ev.user[pos], ev.item[pos])),
                             shape=(ev.n_users, n))
        seen.sum_duplicates()
        seen = seen.tocoo()
        users_of, items_of = seen.row, seen.col
        out["n_users"] = np.bincount(items_of, minlength=n).astype(np.int32)
        _, band = user_ages(bundle.users, mapping, self.cutoff_, self.bands_)
        by_band = np.bincount(items_of.astype(np.int64) * 5 + band[users_of] + 1,
                              minlength=n * 5).reshape(n, 5)
        for j, b in enumerate(BAND_NAMES):
            out[f"pop_{b}"] = by_band[:, j + 1].astype(np.int32)
        out["pop_unknown"] = by_band[:, 0].astype(np.int32)
        if self.user_communities_:
            uidx, urows = aligned(bundle.users, "user_id", mapping.user_index)
            ucomm = np.full(mapping.n_users, -1, dtype=np.int64)
            ucomm[uidx] = codes_in(urows["community_id"], self.user_communities_)
            c = ucomm[users_of]
            ok = c >= 0
            k = len(self.user_communities_)
            by_comm = np.bincount(items_of[ok].astype(np.int64) * k + c[ok],
                                  minlength=n * k).reshape(n, k)
            for j, comm in enumerate(self.user_communities_):
                out[f"popc_{comm}"] = by_comm[:, j].astype(np.int32)
        return pd.DataFrame(out, index=pd.RangeIndex(n, name="item_index"))

    def _bands_matrix(self, rows: pd.DataFrame, idx: np.ndarray, n: int) -> sp.csr_matrix:
        return self._lists_matrix(rows, "target_bands", self.target_bands_, idx, n)

    def _tags_matrix(self, rows: pd.DataFrame, idx: np.ndarray, n: int) -> sp.csr_matrix:
        return self._lists_matrix(rows, "tags", self.tags_, idx, n)

    @staticmethod
    def _lists_matrix(rows, col, vocab, idx, n) -> sp.csr_matrix:
        if col not in rows or not vocab:
            return sp.csr_matrix((n, len(vocab)))
        m = _multi_hot(split_multi(rows[col]), vocab)
        # Scatter the rows of the table into their item indices.
        return sp.csr_matrix((np.ones(len(idx)), (idx, np.arange(len(idx)))),
                             shape=(n, len(idx))) @ m

    def content_matrix(self, items) -> sp.csr_matrix:
        """Items x content features (float32 CSR, rows L2-normalised; ``content_feature_names_``).

        Parameters
        ----------
        items : DataBundle or DataFrame
            A bundle gives one row per item index of the mapping (items missing from its items
            table get an all-zero row). A DataFrame of items (e.g. new courses, cold start) gives
            one row per DataFrame row, in order, whether or not the mapping knows the ids.
        """
        if isinstance(items, DataBundle):
            idx, rows = aligned(items.items, "item_id", self.id_mapping_.item_index)
            n = self.id_mapping_.n_items
        else:
            rows, idx, n = items, np.arange(len(items)), len(items)
        w = self.block_weights_
        blocks = []
        if self.vectorizer_ is not None:
            text = _text(rows)
            tfidf = self.vectorizer_.transform(text.to_numpy()).astype(np.float64)
            scatter = sp.csr_matrix((np.ones(len(idx)), (idx, np.arange(len(idx)))),
                                    shape=(n, len(idx)))
            blocks.append(w["text"] * (scatter @ tfidf))
        for col, vocab, weight in (("category", self.categories_, w["category"]),
                                   ("fee_tier", self.fee_tiers_, w["fee_tier"])):
            codes = np.full(n, -1, dtype=np.int64)
            if col in rows and len(idx):
                codes[idx] = codes_in(rows[col], vocab)
            blocks.append(weight * _normalize(_one_hot(codes, len(vocab))))
            if col == "category":
                blocks.append(w["target_bands"] * _normalize(self._bands_matrix(rows, idx, n)))
                blocks.append(w["tags"] * _normalize(self._tags_matrix(rows, idx, n)))
        m = sp.hstack([sp.csr_matrix(b) for b in blocks], format="csr")
        return _normalize(m).astype(np.float32)
