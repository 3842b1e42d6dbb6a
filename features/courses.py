"""The courses' content matrix: text n-grams, category, target bands, tags and fee tier.

The content model and the hybrid's cold start read it; it depends on the items table only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from features.bands import BAND_NAMES
from features.codes import codes, distinct
from features.frames import DataBundle
from features.ids import IdMapping
from features.tables import aligned, multi_hot, one_hot, split_multi

__all__ = ["CONTENT_COLUMNS", "CharGrams", "CourseFeatures", "DEFAULT_BLOCK_WEIGHTS"]

# The items' columns the content matrix reads when present.
CONTENT_COLUMNS = ("title", "description", "category", "tags", "target_bands", "fee_tier")
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


def _scatter(idx: np.ndarray, n: int) -> sp.csr_matrix:
    """``n x len(idx)`` matrix that moves table row ``r`` to item index ``idx[r]``."""
    return sp.csr_matrix((np.ones(len(idx)), (idx, np.arange(len(idx)))), shape=(n, len(idx)))


class CourseFeatures:
    """The content matrix of the items of an id mapping, for content-based models.

    Parameters
    ----------
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
        Shared mapping; None fits one on the bundle given to ``fit``.

    Attributes
    ----------
    id_mapping_ : IdMapping
    categories_, fee_tiers_, tags_, target_bands_ : list of str
        Vocabularies of the one-/multi-hot blocks.
    vectorizer_ : TfidfVectorizer or None
        None when no item has any text.
    content_feature_names_ : list of str
    """

    def __init__(
        self,
        ngram_range: tuple[int, int] = (1, 3),
        max_text_features: int = 20000,
        min_df: int = 1,
        max_tags: int = 50,
        block_weights: dict[str, float] | None = None,
        id_mapping: IdMapping | None = None,
    ):
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

    def fit(self, bundle: DataBundle) -> CourseFeatures:
        """Learn the vocabularies and the TF-IDF vectorizer from ``bundle.items``."""
        self._validate()
        self.id_mapping_ = (self.id_mapping if self.id_mapping is not None
                            else IdMapping().fit(bundle))
        items = bundle.items
        self.categories_ = distinct(items["category"]).tolist() if "category" in items else []
        self.fee_tiers_ = distinct(items["fee_tier"]).tolist() if "fee_tier" in items else []
        self.target_bands_ = list(BAND_NAMES)
        if "tags" in items:
            counts = pd.Series([t for ts in split_multi(items["tags"]) for t in ts]).value_counts()
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            self.tags_ = sorted(t for t, _ in ranked[: self.max_tags])
        else:
            self.tags_ = []
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
        return self

    @property
    def n_text_features(self) -> int:
        """Columns of the text block, which comes first in :meth:`content_matrix`."""
        return 0 if self.vectorizer_ is None else len(self.vectorizer_.vocabulary_)

    def _bands_matrix(self, rows: pd.DataFrame, idx: np.ndarray, n: int) -> sp.csr_matrix:
        return self._lists_matrix(rows, "target_bands", self.target_bands_, idx, n)

    def _tags_matrix(self, rows: pd.DataFrame, idx: np.ndarray, n: int) -> sp.csr_matrix:
        return self._lists_matrix(rows, "tags", self.tags_, idx, n)

    @staticmethod
    def _lists_matrix(rows, col, vocab, idx, n) -> sp.csr_matrix:
        if col not in rows or not vocab:
            return sp.csr_matrix((n, len(vocab)))
        return _scatter(idx, n) @ multi_hot(split_multi(rows[col]), vocab)

    def content_matrix(self, bundle: DataBundle) -> sp.csr_matrix:
        """Items x content features (float32 CSR, rows L2-normalised; ``content_feature_names_``).

        One row per item index of the mapping; an item missing from ``bundle.items`` gets an
        all-zero row.
        """
        idx, rows = aligned(bundle.items, "item_id", self.id_mapping_.item_index)
        n = self.id_mapping_.n_items
        w = self.block_weights_
        blocks = []
        if self.vectorizer_ is not None:
            text = _text(rows)
            tfidf = self.vectorizer_.transform(text.to_numpy()).astype(np.float64)
            blocks.append(w["text"] * (_scatter(idx, n) @ tfidf))
        for col, vocab, weight in (("category", self.categories_, w["category"]),
                                   ("fee_tier", self.fee_tiers_, w["fee_tier"])):
            code = np.full(n, -1, dtype=np.int64)
            if col in rows and len(idx):
                code[idx] = codes(rows[col], vocab)
            blocks.append(weight * _normalize(one_hot(code, len(vocab))))
            if col == "category":
                blocks.append(w["target_bands"] * _normalize(self._bands_matrix(rows, idx, n)))
                blocks.append(w["tags"] * _normalize(self._tags_matrix(rows, idx, n)))
        m = sp.hstack([sp.csr_matrix(b) for b in blocks], format="csr")
        return _normalize(m).astype(np.float32)
