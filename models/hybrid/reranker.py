"""Stage 2 of the hybrid: gradient-boosted trees that re-rank the candidates.

The trees learn on a validation cut from the training period: the components are fitted on
the history before the cut, every validation user's candidates become signal rows, and a row's
label is whether the user took that course after the cut. Some validation users are held out
of the trees' training (cross-fitted on small validation sets), and so are the courses new at
the cut, half by half; the held-out lists give honest validation figures, and let training
compare the trees with each single component.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import ThreadpoolController, threadpool_limits

from models.base import batch_size
from models.forest import FlatForest
from models.hybrid.signals import SIGNALS

RANKER_FILE = "ranker.joblib"
# Validation users turned into signal rows at once (bounds the dense candidate masks).
_BATCH = 1000  # users per batch, fewer for a large catalogue (batch_size)
# The flat forest scores a large batch in pieces of this many rows: each piece's gathered
# leaf masks stay small (one 20,000-row call took twice the time of five 4,000-row ones;
# a served batch of a few residents is one piece).
_FLAT_CHUNK = 4000
# Without a flat forest, larger batches go to sklearn's predictor on every OpenMP thread.
_FLAT_LIMIT = 20000
# At most this many held-out validation users: enough for stable figures; ranking them costs
# fit time.
_MAX_HOLDOUT = 2000
# The trees' negative rows in all: with more training users than this allows
# ``negatives_per_user`` each, every user keeps fewer (5 each for 20,000 users). On 100k and
# 400k residents 5 negatives per user gave the held-out nDCG of 10 (and 10 that of 30) with the
# trees fitted in about half the time of 10, while on small data (the low-rank set's 900 users)
# 10 lost to 30 (docs/decisions.md), so the cap only bites at district scale.
_MAX_NEGATIVES = 100_000
# Fits with fewer rows run on one OpenMP thread: on a busy machine a parallel region waits for
# a descheduled sibling, and a small fit gains little from the second core.
_PARALLEL_FIT_ROWS = 100_000
# Up to this many validation users the held-out lists are cross-fitted (every user held out
# once); above it one held-out fold is used.
_CROSSFIT_LIMIT = 5000


class ReRanker:
    """The fitted trees of stage 2, and their flat-array form for small batches.

    Parameters
    ----------
    members : list of HistGradientBoostingClassifier
        Fitted on signal rows (columns as :data:`SIGNALS`), positives labelled True. A row's
        score is the mean of their probabilities: the cross-fitted fold trees and the final
        trees of one fit, each seeing a different part of the validation users, averaged
        (bagging; docs/decisions.md), or a single set of trees.
    """

    def __init__(self, members: list[HistGradientBoostingClassifier]):
        if not members:
            raise ValueError("a re-ranker needs at least one set of trees")
        self.members = list(members)
        self._forest: list[FlatForest | None] = []  # built on the first batch scored

    @property
    def trees(self) -> HistGradientBoostingClassifier:
        """The last member: the trees fitted on every training row."""
        return self.members[-1]

    @classmethod
    def fit(cls, rows: np.ndarray, labels: np.ndarray, *, learning_rate: float, max_iter: int,
            max_leaf_nodes: int, random_state: int | None) -> ReRanker:
        """Trees fitted on signal rows and their labels."""
        trees = HistGradientBoostingClassifier(
            learning_rate=learning_rate,
            max_iter=max_iter,
            max_leaf_nodes=max_leaf_nodes,
            early_stopping=False,
            random_state=random_state,
        )
        with threadpool_limits(1 if rows.shape[0] < _PARALLEL_FIT_ROWS else None, "openmp"):
            return cls([trees.fit(rows, labels)])

    @classmethod
    def averaged(cls, parts: list[ReRanker]) -> ReRanker:
        """One re-ranker scoring with the mean of ``parts``' probabilities; trees that saw
        one label only (a fold whose users' candidates held no positive) are left out, unless
        the last part's are such trees too (then nothing learned, and the guard says so)."""
        members = [trees for part in parts for trees in part.members]
        learned = [trees for trees in members if trees.classes_.size > 1]
        return cls(learned if parts[-1].trees in learned else parts[-1].members)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """P(taken) for each signal row: the members' mean."""
        if rows.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        # The trees laid out as flat arrays, every member's, and walked for every row and tree
        # at once (models.forest): a single resident's few hundred rows take ~0.2 ms where
        # sklearn's per-tree calls take ~4 ms (~35 us each plus OpenMP start-up), and a
        # training batch's hundreds of thousands, in pieces, 0.6 of sklearn's time on two
        # threads.
        if not self._forest:
            self._forest.append(FlatForest.from_sklearn(*self.members))
        forest = self._forest[0]
        if forest is not None:
            if rows.shape[0] <= _FLAT_CHUNK:  # a served batch: one piece, no copy
                return forest.predict_proba(rows)
            return np.concatenate([forest.predict_proba(rows[start:start + _FLAT_CHUNK])
                                   for start in range(0, rows.shape[0], _FLAT_CHUNK)])
        if rows.shape[0] > _FLAT_LIMIT:
            return self._sklearn_mean(rows)
        with _openmp_controller().limit(limits=1, user_api="openmp"):
            return self._sklearn_mean(rows)

    def _sklearn_mean(self, rows: np.ndarray) -> np.ndarray:
        """The members' mean probability through sklearn's own predictor."""
        return np.mean([trees.predict_proba(rows)[:, 1] for trees in self.members], axis=0)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the trees to ``directory/ranker.joblib`` (the one pickle of a hybrid): the
        list of members."""
        path = Path(directory) / RANKER_FILE
        joblib.dump(self.members, path)
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> ReRanker:
        """Read what :meth:`save` wrote (a single set of trees, as older versions saved, is
        one member). A pickle: call only on a folder whose checksums were verified."""
        path = Path(directory) / RANKER_FILE
        members = joblib.load(path)
        if isinstance(members, HistGradientBoostingClassifier):
            members = [members]
        if (not isinstance(members, list) or not members
                or not all(isinstance(t, HistGradientBoostingClassifier) for t in members)):
            raise ValueError(f"{path} holds a {type(members).__name__}, not the re-ranker's "
                             "trees")
        return cls(members)


def validation_users(target: sp.csr_matrix) -> np.ndarray:
    """The validation users: those with at least one positive after the cut (sorted)."""
    users = np.flatnonzero(np.diff(target.indptr) > 0)
    if users.size == 0:
        raise ValueError("validation target has no positives: cannot train the re-ranker")
    return users


def holdout_folds(users: np.ndarray, holdout_fraction: float,
                  random_state: int | None) -> list[np.ndarray]:
    """Disjoint folds of validation users whose lists are made by trees that never saw them.

    Up to ``_CROSSFIT_LIMIT`` users, every user falls in one of ``round(1 / holdout_fraction)``
    folds (cross-fitting): small validation sets are where a single held-out sample is too
    noisy to compare the trees with the components, and where the trees need every user they
    can get. Above it, one held-out fold of ``holdout_fraction`` (at most ``_MAX_HOLDOUT``
    users) is enough and costs no extra fit. No folds below 10 users or with a fraction of 0.
    """
    if users.size < 10 or holdout_fraction <= 0.0:
        return []
    shuffled = np.random.default_rng(random_state).permutation(users)
    if users.size <= _CROSSFIT_LIMIT:
        n_folds = max(2, int(round(1.0 / holdout_fraction)))
        return [np.sort(fold) for fold in np.array_split(shuffled, n_folds)]
    n_hold = min(int(round(users.size * holdout_fraction)), _MAX_HOLDOUT)
    return [np.sort(shuffled[:n_hold])]


def new_item_shares(fit_X: sp.csr_matrix, target: sp.csr_matrix, allowed: np.ndarray | None,
                     random_state: int | None) -> np.ndarray:
    """Two disjoint halves of the candidates new at the cut: (0 or 2, n_items) bool.

    A course with no history at the cut is known to the trees only by its content and its
    take-up after the cut. Trees that learned that take-up from some validation users would
    rank the course for the held-out users with knowledge no new course comes with when the
    model serves (on the cold-item protocol every candidate is such a course, and the
    held-out lists flattered the trees: 0.31 against popularity's 0.13 on validation, 0.12
    against 0.10 on test). So new courses are cross-fitted as users are: each half gets
    trees that never learned on it (:class:`ItemCrossFit`). No halves when no new candidate
    was taken up after the cut (nothing to leak).
    """
    new = fit_X.getnnz(axis=0) == 0
    if allowed is not None:
        new &= allowed
    new &= target.getnnz(axis=0) > 0
    if not new.any():
        return np.zeros((0, new.size), dtype=bool)
    halves = np.array_split(np.random.default_rng(random_state).permutation(np.flatnonzero(new)),
                            2)
    shares = np.zeros((2, new.size), dtype=bool)
    for share, half in zip(shares, halves):
        share[half] = True
    return shares


class ItemCrossFit:
    """Trees of one held-out fold, one set per share of the new courses, set ``j`` fitted
    without the rows of share ``j``: a new course is scored by the trees that never learned on
    it, a course with history by the mean of all of them."""

    def __init__(self, trees: list[ReRanker], shares: np.ndarray):
        self.trees, self.shares = trees, shares

    def predict(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        if len(self.trees) == 1:
            return self.trees[0].predict(rows)
        # (n_trees, n_pairs): the trees that may score each pair. Trees ``j`` learned on no
        # row of share ``j``, so they score its courses; every set scores the others.
        may = self.shares[:, items] | ~self.shares.any(axis=0)[items]
        each = np.array([trees.predict(rows) for trees in self.trees])
        return (each * may).sum(axis=0) / may.sum(axis=0)


def training_users(users: np.ndarray, folds: list[np.ndarray], max_train_users: int,
                   random_state: int | None) -> np.ndarray:
    """The users whose candidates become training rows (sorted).

    Cross-fitted folds: every user, since each fold's trees learn on the others. One held-out
    fold (or none): the users outside it, or a sample of ``max_train_users`` of them; the
    held-out users' rows would never reach a tree, so they are not built.
    """
    if len(folds) > 1:
        return users
    rest = np.setdiff1d(users, folds[0]) if folds else users
    if rest.size <= max_train_users:
        return rest
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(rest, max_train_users, replace=False))


def training_rows(
    pairs: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, Callable]],
    target: sp.csr_matrix,
    users: np.ndarray,
    negatives_per_user: int,
    random_state: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The trees' training rows, their labels, and the user and the item of each row.

    ``pairs(batch)`` gives the candidates of a batch of users as ``(row in batch, item,
    rows_of)``, ``rows_of(index)`` the signal rows of the pairs it selects; a pair is positive
    when ``target`` holds it. Every positive is kept, and ``negatives_per_user`` random
    negatives of each user (:func:`_subsample`; fewer for many users, :func:`negatives_kept`);
    only the kept pairs' rows are built (most candidates are dropped negatives, and their rows
    were most of the cost).
    """
    rng = np.random.default_rng(random_state)
    negatives = negatives_kept(negatives_per_user, users.size)
    feats, labels, owners, items = [], [], [], []
    size = batch_size(target.shape[1], _BATCH)
    batches = [users[start : start + size] for start in range(0, users.size, size)]
    for batch, (cand_r, cand_i, rows_of) in zip(batches, _one_ahead(pairs, batches)):
        truth = np.asarray(target[batch][cand_r, cand_i]).ravel() > 0
        keep = _subsample(cand_r, truth, rng, negatives)
        feats.append(rows_of(keep))
        labels.append(truth[keep])
        owners.append(batch[cand_r[keep]])
        items.append(cand_i[keep])
    return (np.vstack(feats), np.concatenate(labels), np.concatenate(owners),
            np.concatenate(items))


def _one_ahead(make: Callable, batches: list[np.ndarray]) -> Iterator:
    """``make(batch)`` for each batch, in order, the next one computed on a second thread while
    the caller works on the current one.

    A batch's candidates (the components' scores, mostly numpy work outside the GIL) and the
    caller's sampling and signal rows then share the two cores; the results and the order are
    those of a plain loop, and one batch ahead bounds the memory (a batch's dense score rows).
    """
    if len(batches) < 2:
        yield from (make(batch) for batch in batches)
        return
    with ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(make, batches[0])
        for batch in batches[1:]:
            current = ahead.result()
            ahead = pool.submit(make, batch)
            yield current
        yield ahead.result()


def negatives_kept(negatives_per_user: int, n_users: int) -> int:
    """Negatives kept per training user: ``negatives_per_user``, or fewer (at least 1) when
    ``n_users`` of them would exceed :data:`_MAX_NEGATIVES` rows."""
    return min(negatives_per_user, max(_MAX_NEGATIVES // max(n_users, 1), 1))


def _subsample(cand_r: np.ndarray, truth: np.ndarray, rng: np.random.Generator,
               negatives_per_user: int) -> np.ndarray:
    """Indices of the pairs kept: every positive and a random subset of each user's negatives.

    Most candidates are negatives, and subsampling them cuts the trees' training time
    several-fold. Each pair draws a random key; per user, the positives come first, then the
    negatives by descending key, and the first ``negatives_per_user`` negatives are kept.
    """
    key = rng.random(truth.size)
    order = _user_then_key_order(cand_r, truth, key)
    counts = np.bincount(cand_r, minlength=1)
    first = (np.cumsum(counts) - counts)[cand_r[order]]
    rank_in_user = np.arange(order.size) - first
    positives = np.bincount(cand_r, truth)[cand_r[order]]
    return order[truth[order] | (rank_in_user < negatives_per_user + positives)]


def _user_then_key_order(cand_r: np.ndarray, truth: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The pairs sorted by user, positives first, then by descending ``key`` (in [0, 1)).

    A batch's rows (under 1024) and the key's 53 random bits fit one 64-bit integer, so this is
    one sort of integers instead of a lexicographic sort of two columns.
    """
    if cand_r.size == 0 or cand_r.max() >= 1 << 10:
        return np.lexsort((-(key + truth * 2.0), cand_r))
    bits = (np.float64(1 << 53) * key).astype(np.uint64)  # exact: the key is k / 2**53
    packed = ((cand_r.astype(np.uint64) << np.uint64(54))
              | ((~truth).astype(np.uint64) << np.uint64(53))
              | (np.uint64((1 << 53) - 1) - bits))
    return np.argsort(packed, kind="stable")


# Where the trees rank, equal scores are ordered by these signals, best first. The trees give
# many candidates of a resident with no history the same score (their signals fall in the same
# bins): among those, the popular courses of the resident's band come first, as popularity by
# band would order them. A component served alone keeps its own order among its equal scores,
# so a model that falls back on a component lists exactly what that component lists.
TIE_SIGNALS = (SIGNALS.index("pop_band"), SIGNALS.index("pop"))


def candidate_order(r: np.ndarray, i: np.ndarray, score: np.ndarray,
                    tie_rows: np.ndarray | None = None,
                    tie_order: np.ndarray | None = None) -> np.ndarray:
    """The candidate pairs sorted by user, then best first: by ``score``; equal scores by
    :data:`TIE_SIGNALS` of ``tie_rows`` (the pairs' signal rows, given where the trees rank),
    then by the lower ``tie_order`` (one value per pair; the benchmark's random order), then
    by the lower item index.

    Scores compare as the float32 the lists carry: two scores equal there are equal, whatever
    bits below it the sum of the trees left (they differ between summation orders)."""
    score = np.asarray(score, dtype=np.float32)
    keys = [i] if tie_order is None else [i, tie_order]
    if tie_rows is not None:
        keys += [-tie_rows[:, c] for c in reversed(TIE_SIGNALS)]
    return np.lexsort(keys + [-score, r])


def untied(r: np.ndarray, i: np.ndarray, score: np.ndarray, tie_rows: np.ndarray | None = None,
           tie_order: np.ndarray | None = None) -> np.ndarray:
    """``score`` with each run of a user's equal scores stepped down a few float32 units in
    :func:`candidate_order` (with ``tie_rows`` and ``tie_order``), so that a plain sort of the
    scores gives that order.

    Every distinct score keeps its place: a step that would reach the user's next lower score
    is not taken (that pair keeps its score and ties with the run's first).
    """
    if score.size == 0:
        return score
    score = np.asarray(score, dtype=np.float32)  # the precision candidate_order compares in
    order = candidate_order(r, i, score, tie_rows, tie_order)
    r_o, s_o = r[order], score[order]
    new_run = np.r_[True, (r_o[1:] != r_o[:-1]) | (s_o[1:] != s_o[:-1])]
    starts = np.flatnonzero(new_run)
    run_id = np.cumsum(new_run) - 1
    step = np.arange(s_o.size) - starts[run_id]
    # each run's next lower score: the next run's, when it is the same user's (else -inf)
    following = np.r_[starts[1:], starts[-1]]
    same_user = (following != starts) & (r_o[following] == r_o[starts])
    below = np.where(same_user, s_o[following], np.float32(-np.inf))
    stepped = s_o - step.astype(np.float32) * np.spacing(np.abs(s_o))
    keep = (stepped > below[run_id]) & np.isfinite(s_o)
    out = np.empty_like(s_o)
    out[order] = np.where(keep, stepped, s_o)
    return out


def top_n(r: np.ndarray, i: np.ndarray, score: np.ndarray, rows: np.ndarray, n_users: int,
          n: int, by_tie_signals: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each user's ``n`` best candidates in :func:`candidate_order`, equal scores by the
    :data:`TIE_SIGNALS` of ``rows`` if ``by_tie_signals`` (where the trees rank).

    ``(r, i)`` are the candidate pairs (user row, item), ``rows`` their signal rows. Returns
    ``(items (n_users, n) int, scores (n_users, n) float32, signals (n_users, n,
    len(SIGNALS)))`` padded with ``-1`` / ``-inf`` / NaN.
    """
    items = np.full((n_users, n), -1, dtype=np.int64)
    scores = np.full((n_users, n), -np.inf, dtype=np.float32)
    sig = np.full((n_users, n, len(SIGNALS)), np.nan, dtype=np.float32)
    order, place = _places(r, i, score, rows if by_tie_signals else None)
    top = place < n
    pick, at = order[top], place[top]  # only the listed pairs' rows are gathered
    items[r[pick], at] = i[pick]
    scores[r[pick], at] = score[pick]
    sig[r[pick], at] = rows[pick]
    return items, scores, sig


def ranks_within_user(r: np.ndarray, i: np.ndarray, score: np.ndarray,
                      rows: np.ndarray) -> np.ndarray:
    """Each candidate pair's 0-based place in its user's list ordered by the trees' ``score``
    (equal scores as :func:`candidate_order` orders them with the signal ``rows``)."""
    order, place = _places(r, i, score, rows)
    rank = np.empty(r.size, dtype=np.float64)
    rank[order] = place
    return rank


def _places(r: np.ndarray, i: np.ndarray, score: np.ndarray,
            tie_rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The pairs in :func:`candidate_order`, and each one's place in its user's list there."""
    order = candidate_order(r, i, score, tie_rows)
    r_o = r[order]
    return order, np.arange(r.size) - np.searchsorted(r_o, r_o, side="left")


def source_parts(source: str) -> tuple[bool, str | None]:
    """What a served source name ranks by: ``(the trees?, the component or None)``.

    ``"reranker"`` is ``(True, None)``, a component's name ``(False, name)`` and
    ``"reranker+<component>"`` (the two blended, :func:`blended`) ``(True, component)``.
    """
    trees, _, component = source.rpartition("+")
    if trees:
        return True, component
    return (True, None) if component == "reranker" else (False, component)


def component_score(rows: np.ndarray, component: str) -> np.ndarray:
    """A component's own order as a score in (0, 1]: 1 / (1 + its rank of the candidate) (the
    rank column holds log1p(rank)), so declared interests lift a course the same way whatever
    ranks the candidates."""
    return np.exp(-rows[:, SIGNALS.index(f"{component}_rank")])


def blended(tree_rank: np.ndarray, component: np.ndarray) -> np.ndarray:
    """The trees' order and a component's averaged as reciprocal ranks: 1 / (1 + the trees'
    rank within the user's candidates) and :func:`component_score`, with equal weights.

    Where the trees and a component rank about equally well on held-out users, each gets
    wrong what the other gets right often enough that their average ranks better than
    either (docs/decisions.md); training's guard serves it only when the held-out users show
    that."""
    return 0.5 / (1.0 + tree_rank) + 0.5 * component


def with_interests(score: np.ndarray, rows: np.ndarray, boost: float) -> np.ndarray:
    """Declared interests as an explicit prior: ``score * (1 + boost)`` where they match.

    No training data carries declared interests (they come with a request), so the trees
    never see the signal set and cannot learn its weight; a stated, tested prior is the honest
    alternative to ignoring what the resident told us (docs/decisions.md).
    """
    if rows.shape[0] == 0 or not boost:
        return score
    match = rows[:, SIGNALS.index("interest")] > 0
    return np.where(match, score * (1.0 + boost), score)


_CONTROLLER: list[ThreadpoolController] = []


def _openmp_controller() -> ThreadpoolController:
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]
