"""The hybrid ranker: candidates from every component model, then a learned re-ranker.

Stage 1 asks each component (popularity global / by band / by community x band, category
popularity by band, EASE, item-kNN, ALS, content) for its top items and takes the union as
candidates. Stage 2 describes every (user, candidate) pair with a row of signals (each
component's score and rank, category affinity, band eligibility, venue fit, declared interests,
recent activity) and scores it with gradient-boosted trees trained on a validation cut from the
training period: the components are fitted on the part before the cut, the labels are what
users took up after it. Cold users (no history) and cold items (no interactions) get rows too,
so the trees learn how far to trust popularity, band and content when collaborative signals are
empty; that is what makes cold start work.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import ThreadpoolController, threadpool_limits

from models.base import Recommender
from models.collaborative import ALS
from models.content import ContentModel
from models.ease import EASE
from models.forest import FlatForest
from models.neighbours import ItemKNN
from models.popularity import CategoryPopularity, Popularity

N_BANDS = 4
RANKER_FILE = "ranker.joblib"
# Names of the stage-2 signals, in column order; the engine turns them into reasons.
COMPONENTS = ("pop", "pop_band", "pop_local", "cat_band", "ease", "knn", "als", "content")
SIGNALS = (
    *COMPONENTS,
    *(f"{c}_rank" for c in COMPONENTS),
    "category_affinity",
    "eligible",
    "same_community",
    "interest",
    "history_size",
    "item_log_count",
    "item_recent",
    "item_age_days",
    "item_idle_days",
    "profile_category",
)
# Smoothing of the profile lifts: an attribute value seen with few interactions stays near 0.
_PROFILE_PRIOR = 10.0


class HybridRanker(Recommender):
    """Two-stage hybrid: component candidates re-ranked by gradient-boosted trees.

    Parameters
    ----------
    ease_l2, knn_neighbours, als_factors, als_regularization, als_iterations : component params
        Usually the values tuned for the matching baselines. ``als_factors=0`` (the default)
        leaves ALS out: on every protocol we measured it added nothing once EASE and item-kNN
        were in, and it was the slowest component to fit (docs/decisions.md).
    n_candidates : int, default 50
        Items each component contributes to a user's candidate set.
    max_train_users : int, default 20000
        Validation users sampled to train the re-ranker (bounds the training time).
    interest_boost : float, default 1.0
        Declared interests multiply a matching course's score by ``1 + interest_boost``.
    holdout_fraction : float, default 0.2
        Share of validation users kept out of the re-ranker's training; their lists
        (``holdout_recs_``) give honest validation figures for the artifact's manifest.
    negatives_per_user : int, default 30
        Candidates without a positive kept per user (all positives are kept): most candidates
        are negatives, and subsampling them cuts the trees' training time several-fold.
    learning_rate, max_iter, max_leaf_nodes : gradient-boosting params.
    random_state : int, default 0

    Side information
    ----------------
    ``fit(user_items, user_band, user_community, user_attributes, item_category, item_bands,
    item_community, item_features, validation=(fit_matrix, target_matrix))``: arrays over
    users / items as documented in :meth:`_fit`. ``score(..., user_band, user_community,
    user_interests, user_attributes, allowed)`` for the requested users (omitted: the values
    stored at fit time for known users, unknown for the others).
    """

    _fitted_arrays = (
        "item_category_",
        "item_bands_",
        "item_community_",
        "user_band_",
        "user_community_",
        "user_attributes_",
        "profile_lift_",
        "profile_offsets_",
        "item_count_",
        "item_temporal_",
        "holdout_users_",
        "holdout_recs_",
        "holdout_popularity_recs_",
        "n_categories_",
        "n_communities_",
    )

    def __init__(
        self,
        ease_l2: float = 200.0,
        knn_neighbours: int = 100,
        als_factors: int = 0,
        als_regularization: float = 0.05,
        als_iterations: int = 12,
        n_candidates: int = 50,
        max_train_users: int = 20000,
        negatives_per_user: int = 30,
        holdout_fraction: float = 0.2,
        interest_boost: float = 1.0,
        learning_rate: float = 0.1,
        max_iter: int = 100,
        max_leaf_nodes: int = 15,
        random_state: int = 0,
    ):
        self.ease_l2 = ease_l2
        self.knn_neighbours = knn_neighbours
        self.als_factors = als_factors
        self.als_regularization = als_regularization
        self.als_iterations = als_iterations
        self.n_candidates = n_candidates
        self.max_train_users = max_train_users
        self.negatives_per_user = negatives_per_user
        self.holdout_fraction = holdout_fraction
        self.interest_boost = interest_boost
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.random_state = random_state

    # -- components ---------------------------------------------------------------------------
    def _new_components(self) -> dict[str, Recommender]:
        comps: dict[str, Recommender] = {
            "pop": Popularity(),
            "pop_band": Popularity(shrinkage=10.0),
            "pop_local": Popularity(shrinkage=10.0),
            "cat_band": CategoryPopularity(shrinkage=10.0),
            "ease": EASE(l2=self.ease_l2),
            "knn": ItemKNN(k=self.knn_neighbours),
            "content": ContentModel(),
        }
        if self.als_factors:
            comps["als"] = ALS(
                factors=self.als_factors,
                regularization=self.als_regularization,
                iterations=self.als_iterations,
                random_state=self.random_state,
            )
        return comps

    def _fit_components(self, X, user_band, user_community, item_features) -> dict:
        comps = self._new_components()
        for name, model in comps.items():
            if name == "pop_band":
                model.fit(X, user_groups=user_band)
            elif name == "cat_band":
                model.fit(X, user_groups=user_band, item_category=self.item_category_)
            elif name == "pop_local":
                model.fit(X, user_groups=self._local_group(user_band, user_community))
            elif name == "content":
                model.fit(X, item_features=item_features)
            else:
                model.fit(X)
        return comps

    @staticmethod
    def _local_group(band: np.ndarray, community: np.ndarray) -> np.ndarray:
        band = np.asarray(band, dtype=np.int64)
        community = np.asarray(community, dtype=np.int64)
        return np.where((band >= 0) & (community >= 0), community * N_BANDS + band, -1)

    # -- fit ----------------------------------------------------------------------------------
    def _fit(
        self,
        X: sp.csr_matrix,
        *,
        user_band: Any = None,
        user_community: Any = None,
        user_attributes: Any = None,
        item_category: Any = None,
        item_bands: Any = None,
        item_community: Any = None,
        item_features: Any = None,
        item_temporal: Any = None,
        validation: Any = None,
        validation_candidates: Any = None,
    ) -> None:
        """Fit the re-ranker on ``validation`` and the components on ``X``.

        ``validation_candidates`` (item indices, optional) restricts the re-ranker's training
        rows to the items the lists will be drawn from, when the evaluation protocol ranks a
        subset (the cold-item protocol ranks only the new items).

        ``user_band`` / ``user_community`` / ``item_category`` / ``item_community``: int arrays
        (-1 = unknown); ``item_bands``: bool (n_items, 4) target bands; ``item_features``: sparse
        (n_items, n_features) content rows; ``user_attributes``: int (n_users, n_attributes)
        codes of the users' categorical profile columns (gender, region, ...; -1 unknown), whose
        category preferences become the ``profile_category`` signal; ``item_temporal``: float
        (n_items, 3) recent activity, days since first and since last interaction; ``validation``:
        ``(fit_matrix, target_matrix[, item_temporal])``, matrices (n_users, n_items): the
        history before a validation cut, the positives after it, and the items' activity then.
        """
        n_users, n_items = X.shape
        self.user_band_ = _ints(user_band, n_users)
        self.user_community_ = _ints(user_community, n_users)
        self.user_attributes_ = _attribute_codes(user_attributes, n_users)
        self.item_category_ = _ints(item_category, n_items)
        self.item_community_ = _ints(item_community, n_items)
        self.item_bands_ = (
            np.zeros((n_items, N_BANDS), dtype=bool)
            if item_bands is None
            else np.asarray(item_bands, dtype=bool).reshape(n_items, N_BANDS)
        )
        self.item_temporal_ = (np.zeros((n_items, 3), dtype=np.float32) if item_temporal is None
                               else np.asarray(item_temporal, dtype=np.float32))
        self.n_categories_ = int(self.item_category_.max(initial=-1) + 1)
        self.n_communities_ = int(
            max(self.user_community_.max(initial=-1), self.item_community_.max(initial=-1)) + 1
        )
        features = item_features if item_features is not None else sp.identity(n_items, "f4", "csr")
        if validation is None:
            raise ValueError(
                "validation must be (fit_matrix, target_matrix): the hybrid learns "
                "its re-ranker on a validation cut from the training period"
            )
        fit_X, target = (sp.csr_matrix(m, dtype=np.float32) for m in validation[:2])
        full_temporal = self.item_temporal_
        if len(validation) > 2:  # the items' activity as seen at the validation cut
            self.item_temporal_ = np.asarray(validation[2], dtype=np.float32)
        if fit_X.shape != X.shape or target.shape != X.shape:
            raise ValueError(
                f"validation matrices must have shape {X.shape}, got "
                f"{fit_X.shape} and {target.shape}"
            )
        self.item_count_ = np.asarray((fit_X != 0).sum(axis=0)).ravel().astype(np.float32)
        self._components = self._fit_components(
            fit_X, self.user_band_, self.user_community_, features
        )
        self.profile_lift_, self.profile_offsets_ = self._profile_lifts(fit_X)
        target = target.copy()
        target.eliminate_zeros()
        train_users, holdout = self._validation_users(target)
        allowed = None
        if validation_candidates is not None:
            allowed = np.zeros(n_items, dtype=bool)
            allowed[np.asarray(validation_candidates, dtype=np.int64)] = True
        rows, y = self._training_rows(fit_X, target, train_users, allowed)
        ranker = HistGradientBoostingClassifier(
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            early_stopping=False,
            random_state=self.random_state,
        )
        # Small fits are faster on one thread than with OpenMP spinning on a busy machine.
        with threadpool_limits(1 if rows.shape[0] < 200_000 else None, "openmp"):
            self._ranker = ranker.fit(rows, y)
        # Lists for validation users the trees never saw, from components that never saw
        # their validation positives: the honest validation figures of this fit.
        self.holdout_users_ = holdout
        self.holdout_recs_ = self._holdout_lists(holdout, fit_X, "hybrid", allowed)
        self.holdout_popularity_recs_ = self._holdout_lists(holdout, fit_X, "pop_band", allowed)
        # Refit on everything: serving ranks from the full history.
        self.item_temporal_ = full_temporal
        self.item_count_ = np.asarray((X != 0).sum(axis=0)).ravel().astype(np.float32)
        self._components = self._fit_components(X, self.user_band_, self.user_community_, features)
        self.profile_lift_, self.profile_offsets_ = self._profile_lifts(X)

    def _profile_lifts(self, X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Per attribute value, how much more (log ratio) its users take each category.

        ``log(p(category | value) / p(category))`` from the users' positive interactions,
        shrunk towards 0 by ``_PROFILE_PRIOR`` interactions' worth of the overall shares. One
        block of rows per attribute (``offsets[a]`` is its first row); a user's signal for a
        course is the sum over their known attribute values (naive Bayes), which is what lets
        a course nobody has taken yet be ranked by who takes its category.
        """
        n_cat = max(self.n_categories_, 1)
        attrs = self.user_attributes_
        sizes = [int(attrs[:, a].max(initial=-1)) + 1 for a in range(attrs.shape[1])]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        lift = np.zeros((int(offsets[-1]), n_cat), dtype=np.float32)
        if not lift.size or X.nnz == 0:
            return lift, offsets
        users = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        cats = self.item_category_[X.indices]
        keep = (X.data > 0) & (cats >= 0)
        users, cats = users[keep], cats[keep]
        overall = np.bincount(cats, minlength=n_cat).astype(np.float64)
        share = (overall + 1.0) / (overall.sum() + n_cat)
        for a, size in enumerate(sizes):
            code = attrs[users, a]
            known = code >= 0
            counts = np.bincount(code[known] * n_cat + cats[known],
                                 minlength=size * n_cat).reshape(size, n_cat).astype(np.float64)
            p = (counts + _PROFILE_PRIOR * share) / (counts.sum(axis=1, keepdims=True)
                                                     + _PROFILE_PRIOR)
            lift[offsets[a] : offsets[a + 1]] = np.log(p / share)
        return lift, offsets

    def _profile_scores(self, attributes: np.ndarray) -> np.ndarray:
        """Each user's summed category lift, (n_users, n_categories)."""
        out = np.zeros((attributes.shape[0], max(self.n_categories_, 1)), dtype=np.float32)
        for a in range(min(attributes.shape[1], self.profile_offsets_.size - 1)):
            code = attributes[:, a]
            size = self.profile_offsets_[a + 1] - self.profile_offsets_[a]
            ok = (code >= 0) & (code < size)
            out[ok] += self.profile_lift_[self.profile_offsets_[a] + code[ok]]
        return out

    def _validation_users(self, target) -> tuple[np.ndarray, np.ndarray]:
        """Validation users split into re-ranker training users and a held-out sample."""
        rng = np.random.default_rng(self.random_state)
        users = np.flatnonzero(np.diff(target.indptr) > 0)
        if users.size == 0:
            raise ValueError("validation target has no positives: cannot train the re-ranker")
        n_hold = int(round(users.size * self.holdout_fraction)) if users.size >= 10 else 0
        n_hold = min(n_hold, 2000)  # enough for stable figures; ranking them costs fit time
        shuffled = rng.permutation(users)
        holdout = np.sort(shuffled[:n_hold])
        train = np.sort(shuffled[n_hold:])
        if train.size > self.max_train_users:
            train = np.sort(rng.choice(train, self.max_train_users, replace=False))
        return train, holdout

    def _holdout_lists(self, users: np.ndarray, fit_X, source: str, allowed) -> np.ndarray:
        if users.size == 0:
            return np.zeros((0, 10), dtype=np.int64)
        if source == "hybrid":
            return self._rank(users, fit_X[users], 10, {"allowed": allowed})[0]
        rows = fit_X[users]
        groups = np.where(self._known(users, self.n_users_), self.user_band_[users], -1)
        cand = None if allowed is None else np.flatnonzero(allowed)
        return self._components[source].recommend(users, rows, n=10, user_groups=groups,
                                                  candidates=cand)[0]

    def _training_rows(self, fit_X, target, users, allowed) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.random_state)
        feats, labels = [], []
        for start in range(0, users.size, 1000):
            batch = users[start : start + 1000]
            ctx = self._context(batch, None, None, None)
            cand_r, cand_i, rows = self._pair_rows(batch, fit_X[batch], ctx, allowed)
            truth = np.asarray(target[batch][cand_r, cand_i]).ravel() > 0
            # keep every positive and a random subset of each user's negatives
            key = rng.random(truth.size) + truth * 2.0
            order = np.lexsort((-key, cand_r))
            first = np.searchsorted(cand_r[order], cand_r[order], side="left")
            rank_in_user = np.arange(order.size) - first
            keep = order[
                truth[order]
                | (
                    rank_in_user
                    < self.negatives_per_user + np.bincount(cand_r, truth)[cand_r[order]]
                )
            ]
            feats.append(rows[keep])
            labels.append(truth[keep])
        return np.vstack(feats), np.concatenate(labels)

    # -- scoring ------------------------------------------------------------------------------
    def _context(self, users, user_band, user_community, user_interests,
                 user_attributes=None) -> dict:
        known = self._known(users, self.n_users_)
        safe = np.where(known, users, 0)
        band = (
            np.where(known, self.user_band_[safe], -1)
            if user_band is None
            else _ints(user_band, users.size)
        )
        community = (
            np.where(known, self.user_community_[safe], -1)
            if user_community is None
            else _ints(user_community, users.size)
        )
        interests = (
            np.zeros((users.size, max(self.n_categories_, 1)), dtype=bool)
            if user_interests is None
            else np.asarray(user_interests, dtype=bool)
        )
        n_attr = self.user_attributes_.shape[1]
        attributes = (
            np.where(known[:, None], self.user_attributes_[safe], -1)
            if user_attributes is None
            else np.asarray(user_attributes, dtype=np.int64).reshape(users.size, n_attr)
        )
        return {"band": band, "community": community, "interests": interests,
                "attributes": attributes}

    def _component_scores(self, users, X, ctx) -> dict[str, np.ndarray]:
        # The components' own hooks: ``X`` and the groups were checked once by the caller, and
        # the public ``score`` would check them again per component (~40 us each per request).
        out = {}
        for name, model in self._components.items():
            if name in ("pop_band", "cat_band"):
                scores = model._score(users, X, user_groups=ctx["band"])
            elif name == "pop_local":
                groups = self._local_group(ctx["band"], ctx["community"])
                scores = model._score(users, X, user_groups=groups)
            else:
                scores = model._score(users, X)
            out[name] = np.asarray(scores, dtype=np.float32)
        if "als" not in out:
            out["als"] = np.zeros_like(out["pop"])
        return out

    def _pair_rows(self, users, X, ctx, allowed):
        """Candidates and their signal rows: (row index, item index, features)."""
        scores = self._component_scores(users, X, ctx)
        n, n_items = X.shape
        blocked = np.zeros((n, n_items), dtype=bool)
        if X.nnz:  # never re-recommend what the user already has
            blocked[np.repeat(np.arange(n), np.diff(X.indptr)), X.indices] = True
        if allowed is not None:
            blocked |= ~np.asarray(allowed, dtype=bool)[None, :]
        k = min(self.n_candidates, n_items)
        candidate = np.zeros((n, n_items), dtype=bool)
        masked = {}
        for name in COMPONENTS:
            s = np.where(blocked, -np.inf, scores[name])
            masked[name] = s
            top = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < n_items else None
            if top is None:
                candidate[:] = True
            else:
                np.put_along_axis(candidate, top, True, axis=1)
        interests = ctx["interests"]
        if interests.any():  # every course of a declared interest is a candidate
            cats = self.item_category_
            known = cats >= 0
            wanted = np.zeros((n, n_items), dtype=bool)
            wanted[:, known] = interests[:, np.minimum(cats[known], interests.shape[1] - 1)]
            candidate |= wanted
        candidate &= ~blocked
        r, i = np.nonzero(candidate)
        # A candidate's rank in each component: how many items that component scores higher.
        ranks = {name: _ranks(masked[name], r, i) for name in COMPONENTS}
        cat_share = self._category_share(X)
        band = ctx["band"][r]
        cat = self.item_category_[i]
        cols = [scores[c][r, i] for c in COMPONENTS]
        cols += [np.log1p(ranks[c]) for c in COMPONENTS]
        cols.append(np.where(cat >= 0, cat_share[r, np.maximum(cat, 0)], 0.0))
        eligible = np.where(band >= 0, self.item_bands_[i, np.maximum(band, 0)], False)
        cols.append(eligible.astype(np.float32))
        community = ctx["community"][r]
        cols.append(((community >= 0) & (self.item_community_[i] == community)).astype(np.float32))
        has_interest = (cat >= 0) & (cat < interests.shape[1])
        cols.append(
            np.where(
                has_interest, interests[r, np.clip(cat, 0, interests.shape[1] - 1)], False
            ).astype(np.float32)
        )
        cols.append(np.log1p(np.diff(X.indptr))[r].astype(np.float32))
        cols.append(np.log1p(self.item_count_[i]))
        cols.extend(self.item_temporal_[i].T)
        profile = self._profile_scores(ctx["attributes"])
        cols.append(np.where(cat >= 0, profile[r, np.maximum(cat, 0)], 0.0))
        return r, i, np.column_stack(cols).astype(np.float32)

    def _category_share(self, X: sp.csr_matrix) -> np.ndarray:
        """Each user's share of history weight per category, (n_users, n_categories)."""
        n_cat = max(self.n_categories_, 1)
        out = np.zeros((X.shape[0], n_cat), dtype=np.float32)
        if X.nnz == 0:
            return out
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        cats = self.item_category_[X.indices]
        known = cats >= 0
        np.add.at(out, (rows[known], cats[known]), X.data[known])
        totals = np.bincount(rows, weights=X.data, minlength=X.shape[0]).astype(np.float32)
        return np.divide(out, totals[:, None], out=out, where=totals[:, None] > 0)

    def _score(
        self,
        users: np.ndarray,
        X: sp.csr_matrix,
        *,
        user_band: Any = None,
        user_community: Any = None,
        user_interests: Any = None,
        user_attributes: Any = None,
        allowed: Any = None,
    ) -> np.ndarray:
        ctx = self._context(users, user_band, user_community, user_interests, user_attributes)
        r, i, rows = self._pair_rows(users, X, ctx, allowed)
        # Items outside the candidate set rank below every candidate, by global popularity.
        pop = self.item_count_ / max(float(self.item_count_.max(initial=0)), 1.0)
        out = np.broadcast_to(-2.0 + pop, (users.size, X.shape[1])).astype(np.float32)
        if rows.shape[0]:
            out[r, i] = self._with_interests(self._predict(rows), rows)
        return out

    def _with_interests(self, score: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Declared interests as an explicit prior: ``score * (1 + interest_boost)``.

        No training data carries declared interests (they come with a request), so the trees
        never see the signal set and cannot learn its weight; a stated, tested prior is the
        honest alternative to ignoring what the resident told us (docs/decisions.md).
        """
        if rows.shape[0] == 0 or not self.interest_boost:
            return score
        match = rows[:, SIGNALS.index("interest")] > 0
        return np.where(match, score * (1.0 + self.interest_boost), score)

    def _predict(self, rows: np.ndarray) -> np.ndarray:
        if rows.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        if rows.shape[0] > 20000:
            return self._ranker.predict_proba(rows)[:, 1]
        # A single resident's few hundred rows: sklearn walks the trees one call per tree
        # (~35 us each plus OpenMP start-up), so small batches go through the same trees laid
        # out as flat arrays and walked for every row and tree at once.
        forest = self.__dict__.get("_flat")
        if forest is None:
            forest = self.__dict__["_flat"] = FlatForest.from_sklearn(self._ranker)
        if forest is not None:
            return forest.predict_proba(rows)
        with _openmp_controller().limit(limits=1, user_api="openmp"):
            return self._ranker.predict_proba(rows)[:, 1]

    def rank(self, users, X, n: int = 10, **side) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-``n`` items per user, their scores, and their signal rows (one pass).

        Returns ``(items (u, n) int, scores (u, n) float32, signals (u, n, len(SIGNALS)))``
        with ``-1`` / ``-inf`` / NaN padding; seen and disallowed items are never returned.
        Serving calls this instead of :meth:`recommend` so reasons cost no second pass.
        """
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        return self._rank(users, self._check_rows(users, X), n, side)

    def _rank(self, users, X, n, side):
        ctx = self._context(
            users, side.get("user_band"), side.get("user_community"), side.get("user_interests"),
            side.get("user_attributes"),
        )
        r, i, rows = self._pair_rows(users, X, ctx, side.get("allowed"))
        score = self._with_interests(self._predict(rows), rows)
        items = np.full((users.size, n), -1, dtype=np.int64)
        scores = np.full((users.size, n), -np.inf, dtype=np.float32)
        sig = np.full((users.size, n, len(SIGNALS)), np.nan, dtype=np.float32)
        order = np.lexsort((i, -score, r))
        r, i, score, rows = r[order], i[order], score[order], rows[order]
        first = np.searchsorted(r, r, side="left")
        pos = np.arange(r.size) - first
        top = pos < n
        items[r[top], pos[top]] = i[top]
        scores[r[top], pos[top]] = score[top]
        sig[r[top], pos[top]] = rows[top]
        return items, scores, sig

    def anchors(self, items: np.ndarray, history: np.ndarray) -> np.ndarray:
        """For each item, the history item most like it (item-kNN + content), or -1."""
        items = np.asarray(items, dtype=np.int64)
        history = np.asarray(history, dtype=np.int64)
        if items.size == 0 or history.size == 0:
            return np.full(items.size, -1, dtype=np.int64)
        sim = (self._components["knn"].similarity_block(items, history)
               + self._components["content"].similarity_block(items, history))
        best = np.argmax(sim, axis=1)
        return np.where(sim[np.arange(items.size), best] > 0, history[best], -1)

    def similar_items(self, item: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Items most like ``item``: its item-kNN neighbours blended with content similarity."""
        row = sp.csr_matrix(([1.0], ([0], [item])), shape=(1, self.n_items_), dtype=np.float32)
        knn = self._components["knn"].score(np.array([-1]), row)[0]
        content = self._components["content"].score(np.array([-1]), row)[0]
        score = _minmax(knn) + _minmax(content)
        score[item] = -np.inf
        order = np.argsort(-score, kind="stable")[:n]
        return order, score[order]

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        path = super().save(directory)
        for name, model in self._components.items():
            model.save(directory / name)
        joblib.dump(self._ranker, directory / RANKER_FILE)
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> HybridRanker:
        """Load a saved hybrid. Call only on a folder whose checksums were verified: the
        re-ranker is a joblib (pickle) file."""
        directory = Path(directory)
        model = super().load(directory)
        model._components = {
            name: Recommender.load(directory / name)
            for name in COMPONENTS
            if (directory / name).is_dir()
        }
        model._ranker = joblib.load(directory / RANKER_FILE)
        return model


def _ranks(scores: np.ndarray, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """0-based rank of each (row, item) pair within its row: the number of higher scores.

    ``rows`` must be sorted (as ``np.nonzero`` gives them). Sorting each row once and
    searching it is several times cheaper than a full argsort per component.
    """
    out = np.zeros(rows.size, dtype=np.float32)
    if rows.size == 0:
        return out
    ordered = np.sort(scores, axis=1)
    bounds = np.searchsorted(rows, np.arange(scores.shape[0] + 1))
    n_items = scores.shape[1]
    for row in np.flatnonzero(np.diff(bounds)):
        a, b = bounds[row], bounds[row + 1]
        out[a:b] = n_items - np.searchsorted(ordered[row], scores[row, items[a:b]], side="right")
    return out


_CONTROLLER: list[ThreadpoolController] = []


def _openmp_controller() -> ThreadpoolController:
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def _attribute_codes(values: Any, n: int) -> np.ndarray:
    if values is None:
        return np.zeros((n, 0), dtype=np.int32)
    arr = np.asarray(values, dtype=np.int64)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(f"user_attributes must be (n_users={n}, n_attributes), got {arr.shape}")
    return np.where(arr >= 0, arr, -1).astype(np.int32)


def _ints(values: Any, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, -1, dtype=np.int64)
    arr = np.asarray(values, dtype=np.int64).ravel()
    if arr.size != n:
        raise ValueError(f"expected {n} values, got {arr.size}")
    return arr


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(x)), float(np.max(x))
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
