"""The engine: load an artifact, and rank, explain and find similar courses.

This is the boundary between external ids (resident_id, course_id) and matrix indices: the
:class:`features.ids.IdMapping` saved with the model converts here and nowhere else.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.bands import BAND_NAMES
from features.codes import Codebook, Vocabulary, band_codes
from features.event_log import event_values
from features.ids import IdMapping
from models.hybrid import HybridRanker
from recommender.serving.explaining import Explainer
from recommender.serving.wording import Reason
from recommender.training import artifacts
from recommender.training.recipe import read_model_files


@dataclass
class UserContext:
    """What is known about the resident being ranked for."""

    user_id: str | None
    age_band: str | None
    community_id: str | None = None
    household_id: str | None = None
    interests: tuple[str, ...] = ()
    known: bool = False
    # Profile columns (gender, ...) of a resident the model has not seen, as (column, value).
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass
class Recommendation:
    item_id: str
    score: float
    reasons: list[Reason] = field(default_factory=list)
    cold_start: bool = False


@dataclass
class RankedPool:
    """One ranking pass: item indices best first, their scores and stage-2 signals."""

    engine: Engine
    ctx: UserContext
    history: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    signals: np.ndarray
    cold: bool

    @property
    def item_ids(self) -> np.ndarray:
        return self.engine.mapping.item_ids(self.items)

    def take(self, positions, explain: bool = True) -> list[Recommendation]:
        """Recommendations for the given positions of the pool, explained if asked."""
        pos = np.fromiter(positions, dtype=np.int64)
        items = self.items[pos]
        reasons = (self.engine.explainer.explain(self.history, items, self.signals[pos], self.ctx)
                   if explain else [[] for _ in pos])
        return [Recommendation(str(i), float(s), r, self.cold)
                for i, s, r in zip(self.engine.mapping.item_ids(items), self.scores[pos],
                                   reasons)]


@dataclass(frozen=True)
class PoolAsk:
    """One ranking pass asked of :meth:`Engine.rank_pools`: ``n`` courses of ``allowed`` for
    ``ctx`` (``eligible`` as in :meth:`Engine.rank_pool`)."""

    ctx: UserContext
    n: int
    allowed: np.ndarray | None = None
    eligible: np.ndarray | None = None


def _masks(asks: list[PoolAsk]) -> np.ndarray | None:
    """The allowed courses of residents ranked together: one mask, or one row each."""
    if len(asks) == 1 or all(a.allowed is None for a in asks):
        return asks[0].allowed
    n_items = next(a.allowed.size for a in asks if a.allowed is not None)
    return np.stack([np.ones(n_items, dtype=bool) if a.allowed is None
                     else np.asarray(a.allowed, dtype=bool) for a in asks])


class Engine:
    """A loaded artifact: ranks residents, explains, finds similar courses, takes new events."""

    def __init__(self, path: Path, manifest: dict, model: HybridRanker, mapping: IdMapping,
                 vocab: Vocabulary, users: pd.DataFrame, items: pd.DataFrame,
                 history: sp.csr_matrix, community_names: dict[str, str] | None = None):
        self.path = path
        self.manifest = manifest
        self.version = manifest["version"]
        self.model = model
        self.mapping = mapping
        self.vocab = vocab
        self.users = users
        self.items = items
        # Training history stays one immutable CSR; events that arrive while serving go to
        # small per-resident overlays (CSR slicing per request costs ~1 ms, this ~30 us).
        self._history = history.tocsr().astype(np.float32)
        self._overlay: dict[int, dict[int, float]] = {}
        self._lock = threading.Lock()
        # A resident's declared interests match categories whatever their case.
        self._interest_codes = Codebook([str(c).lower() for c in vocab.categories])
        # One dict lookup per request instead of a pandas index lookup (~1 ms for one id), and
        # the users' columns as plain arrays by user index (a pandas row lookup costs ~0.2 ms).
        self._user_code = {u: k for k, u in enumerate(mapping.user_ids_.tolist())}
        self._user_columns = {
            c: np.array([_none(v) for v in users[c].to_numpy(dtype=object)], dtype=object)
            if c in users and len(users) == mapping.n_users else None
            for c in ("age_band", "community_id", "household_id")
        }
        self.community_names = dict(community_names or {})
        titles = (items["title"] if "title" in items else items.index.to_series()).tolist()
        # None for a course without a category (a missing value would be NaN, which is true
        # and would make a category reason about "nan")
        categories = ([_none(v) for v in items["category"].to_numpy(dtype=object)]
                      if "category" in items else [None] * len(items))
        self.explainer = Explainer(model, mapping, vocab, titles, categories,
                                   self.community_names)

    @classmethod
    def load(cls, artifacts_dir: Path, version: str = artifacts.CURRENT) -> Engine:
        """Load and verify an artifact (checksums first; only then are pickles opened)."""
        path = artifacts.resolve(Path(artifacts_dir), version)
        manifest = artifacts.verify(path)
        model, mapping, vocab, users, items, history, names = read_model_files(path)
        items = items.reindex(mapping.item_ids_)
        users = users.reindex(mapping.user_ids_)  # row k is user index k
        if history.shape != (mapping.n_users, mapping.n_items) or model.n_items_ != len(items):
            raise artifacts.ArtifactError(f"{path}: model and tables disagree on sizes")
        return cls(path, manifest, model, mapping, vocab, users, items, history, names)

    # -- contexts -----------------------------------------------------------------------------
    def context_for(self, user_id: str) -> UserContext | None:
        """The context of a resident the model was trained with, or None."""
        idx = self._user_code.get(user_id)
        if idx is None:
            return None
        band, community, household = (self.user_column(c, [idx])[0]
                                      for c in ("age_band", "community_id", "household_id"))
        return UserContext(user_id, band, community, household, (), known=True)

    def user_column(self, column: str, indices) -> list:
        """``column`` (age_band, community_id or household_id) of the users at ``indices``,
        None where unknown."""
        values = self._user_columns.get(column)
        if values is None:
            return [None] * len(indices)
        return values[np.asarray(indices, dtype=np.int64)].tolist()

    def history_rows(self, indices) -> sp.csr_matrix:
        """Training-history rows of the users at ``indices`` (events folded in since the
        model was loaded are left out: batch figures are computed once per model version)."""
        return self._history[np.asarray(indices, dtype=np.int64)]

    def seen(self, user_id: str) -> set[str]:
        idx = int(self.mapping.user_index([user_id])[0])
        if idx < 0:
            return set()
        cols, _ = self._history_of(idx)
        return set(self.mapping.item_ids(cols).tolist())

    def _history_of(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        """Item indices and weights of a resident's history (training plus new events)."""
        a, b = self._history.indptr[idx], self._history.indptr[idx + 1]
        cols, vals = self._history.indices[a:b], self._history.data[a:b]
        with self._lock:
            extra = dict(self._overlay.get(idx, {}))
        if extra:
            merged = dict(zip(cols.tolist(), vals.tolist()))
            merged.update(extra)
            cols = np.fromiter(merged, dtype=np.int32, count=len(merged))
            vals = np.fromiter(merged.values(), dtype=np.float32, count=len(merged))
            order = np.argsort(cols)
            cols, vals = cols[order], vals[order]
        return cols.astype(np.int64), vals

    def _row(self, ctx: UserContext, eligible: np.ndarray | None = None
             ) -> tuple[int, sp.csr_matrix, bool]:
        """The resident's index, history row and whether that history is empty.

        Courses marked in ``eligible`` are left out of the row: the model never proposes a
        course in the row, and whether a course may be offered again is the caller's rule (only
        commitments take a course; a view does not).
        """
        idx = self._user_code.get(ctx.user_id, -1) if ctx.user_id else -1
        n_items = self.mapping.n_items
        if idx < 0:
            return -1, sp.csr_matrix((1, n_items), dtype=np.float32), True
        cols, vals = self._history_of(idx)
        keep = vals > 0
        empty = not keep.any()
        if eligible is not None:
            keep &= ~np.asarray(eligible, dtype=bool)[cols]
        row = sp.csr_matrix((vals[keep], cols[keep].astype(np.int32),
                             np.array([0, int(keep.sum())], dtype=np.int32)),
                            shape=(1, n_items))
        return idx, row, empty

    def _side(self, ctx: UserContext) -> dict:
        interests = np.zeros((1, max(len(self.vocab.categories), 1)), dtype=bool)
        codes = self._interest_codes.codes([name.lower() for name in ctx.interests])
        interests[0, codes[codes >= 0]] = True
        side = {
            "user_band": band_codes([ctx.age_band]),
            "user_community": self.vocab.community_codes([ctx.community_id]),
            "user_interests": interests,
        }
        if ctx.user_id not in self._user_code:  # the model holds known residents' attributes
            profile = {"community_id": ctx.community_id, "age_band": ctx.age_band,
                       **dict(ctx.attributes)}
            side["user_attributes"] = self.vocab.profile_codes(profile)
        return side

    # -- ranking ------------------------------------------------------------------------------
    def recommend(self, ctx: UserContext, n: int = 10, allowed: np.ndarray | None = None,
                  explain: bool = True, eligible: np.ndarray | None = None
                  ) -> list[Recommendation]:
        """Top ``n`` allowed courses for ``ctx``, best first, with reasons when ``explain``.

        ``eligible`` is as in :meth:`rank_pool`.
        """
        pool = self.rank_pool(ctx, n, allowed, eligible)
        return pool.take(range(len(pool.items)), explain)

    def rank_pool(self, ctx: UserContext, n: int, allowed: np.ndarray | None = None,
                  eligible: np.ndarray | None = None) -> RankedPool:
        """The best ``n`` allowed courses with the signals that ranked them, unexplained.

        A caller that picks from a longer list (e.g. a category cap) ranks once and explains
        only what it keeps, with :meth:`RankedPool.take`. ``eligible`` (default ``allowed``)
        marks the courses the caller's rules still offer this resident: their history entries
        (a view, a cancelled enrolment) leave the row, so the model's own seen filter drops
        only what the rules drop; a caller ranking a part of its courses passes all of them,
        so every pass sees the same row.
        """
        return self.rank_pools([PoolAsk(ctx, n, allowed, eligible)])[0]

    def rank_pools(self, asks: list[PoolAsk]) -> list[RankedPool]:
        """:meth:`rank_pool` for several residents at once, the same pools as one by one.

        One resident's ranking is a few hundred numpy calls on small arrays, so most of its
        cost is per call: residents ranked together (one model pass for those whose profile
        the model holds, one for the others, each with their own mask) cost about a third less
        each. A pool of ``n`` is the first ``n`` of the pass's longest pool (the order is
        total: equal scores go by fixed item keys).
        """
        out: list[RankedPool | None] = [None] * len(asks)
        rows, sides, groups = [], [], {}
        for j, ask in enumerate(asks):
            rows.append(self._row(ask.ctx, ask.allowed if ask.eligible is None else ask.eligible))
            sides.append(self._side(ask.ctx))
            groups.setdefault("user_attributes" in sides[j], []).append(j)
        for members in groups.values():
            ids, scores, signals = self.model.rank(
                np.array([rows[j][0] for j in members]),
                rows[members[0]][1] if len(members) == 1 else sp.vstack(
                    [rows[j][1] for j in members], format="csr"),
                n=max(asks[j].n for j in members), allowed=_masks([asks[j] for j in members]),
                **{key: np.concatenate([sides[j][key] for j in members])
                   for key in sides[members[0]]})
            for r, j in enumerate(members):
                n = asks[j].n
                keep = ids[r, :n] >= 0
                out[j] = RankedPool(self, asks[j].ctx, rows[j][1].indices, ids[r, :n][keep],
                                    scores[r, :n][keep], signals[r, :n][keep], rows[j][2])
        return out

    def similar(self, item_id: str, n: int = 10) -> list[tuple[str, float]]:
        idx = int(self.mapping.item_index([item_id])[0])
        if idx < 0:
            raise KeyError(item_id)
        order, score = self.model.similar_items(idx, n)
        return [(str(i), float(s)) for i, s in zip(self.mapping.item_ids(order), score)]

    def add_events(self, events: pd.DataFrame) -> None:
        """Fold new events into users' histories so the next list reflects them (no retrain)."""
        if events.empty:
            return
        u = self.mapping.user_index(events["resident_id"].astype(str))
        i = self.mapping.item_index(events["course_id"].astype(str))
        ok = (u >= 0) & (i >= 0)
        values = events["value"] if "value" in events else pd.Series(np.nan, index=events.index)
        weights = event_values(events["event"][ok], values[ok])
        with self._lock:
            for uu, ii, w in zip(u[ok], i[ok], weights):
                overlay = self._overlay.setdefault(int(uu), {})
                if int(ii) not in overlay:
                    overlay[int(ii)] = float(self._history[int(uu), int(ii)])
                new = max(overlay[int(ii)] + w, 0.0)
                # a cancelled enrolment stays in the history (it still says something about
                # the resident); whether the course is offered again is the rules' business
                overlay[int(ii)] = new if new > 0 else 1e-3

def _none(value):
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


__all__ = ["BAND_NAMES", "Engine", "PoolAsk", "Reason", "Recommendation", "UserContext"]
