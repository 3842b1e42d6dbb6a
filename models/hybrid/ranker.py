"""The hybrid ranker: candidates from every component model, then a learned re-ranker.

Stage 1 (:mod:`models.hybrid.candidates`) asks each component for its top items and takes the
union as candidates. Stage 2 describes every (user, candidate) pair with a row of signals
(:mod:`models.hybrid.signals`) and scores it with gradient-boosted trees trained on a
validation cut from the training period (:mod:`models.hybrid.reranker`): the components are
fitted on the part before the cut, the labels are what users took up after it. Cold users (no
history) and cold items (no interactions) get rows too, so the trees learn how far to trust
popularity, band and content when collaborative signals are empty; that is what makes cold
start work.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.base import Recommender, check_param
from models.hybrid.candidates import (
    COMPONENTS,
    N_BANDS,
    blocked_items,
    candidate_mask,
    component_scores,
    fit_components,
    new_components,
)
from models.hybrid.reranker import (
    ReRanker,
    blended,
    component_score,
    ranks_within_user,
    source_parts,
    top_n,
    untied,
    with_interests,
)
from models.hybrid.signals import (
    Context,
    ItemTable,
    component_ranks,
    profile_lifts,
    profile_scores,
    score_ranges,
    signal_rows,
)
from models.hybrid.validation_cut import ValidationCutMixin
from models.weighting import check_weighting


class HybridRanker(ValidationCutMixin, Recommender):
    """Two-stage hybrid: component candidates re-ranked by gradient-boosted trees.

    Parameters
    ----------
    ease_l2, knn_neighbours, als_factors, als_regularization, als_iterations : component params
        Usually the values tuned for the matching baselines. ``als_factors=0`` (the default)
        leaves ALS out: on every protocol we measured it added nothing once EASE and item-kNN
        were in, and it was the slowest component to fit (docs/decisions.md).
    factor_ae_factors, factor_ae_epochs, factor_ae_l2, factor_ae_epoch_users : the factor
        autoencoder's params (:class:`models.factor_autoencoder.FactorAutoencoder`), usually
        those tuned for the ``factor-autoencoder`` baseline. ``factor_ae_factors=0`` (the
        default) leaves it out: its softmax costs users x courses x factors per pass, and on
        a 100,000-resident district it made training several times longer
        (docs/decisions.md); tuning turns it on where validation says it pays. At most
        ``factor_ae_epoch_users`` users per pass (None: all).
    ease_weighting, knn_weighting, als_weighting, factor_ae_weighting : {"raw", "binary", \
"log"}, default "raw"
        How those components read the matrix's values (:mod:`models.weighting`); usually the
        values tuned for the matching baselines.
    recent_window_days : float or None, default None
        The window of the recent-popularity component (``pop_recent``): interactions whose
        pair's latest event lies at most this many days before the cut, as the
        ``popularity-recent`` baseline counts them (``fit`` then needs ``pair_age``). None:
        the recent window of ``item_temporal`` (a share of the data's time span).
    n_candidates : int, default 50
        Items each component contributes to a user's candidate set.
    max_train_users : int, default 20000
        Validation users sampled to train the re-ranker (bounds the training time).
    negatives_per_user : int, default 30
        Candidates without a positive kept per user (all positives are kept): most candidates
        are negatives, and subsampling them cuts the trees' training time several-fold. With
        more training users than 100,000 negatives allow, each keeps fewer
        (:func:`models.hybrid.reranker.negatives_kept`: 5 for 20,000 users).
    holdout_fraction : float, default 0.2
        Share of validation users kept out of the re-ranker's training; their lists
        (``holdout_recs_``) give honest validation figures for the artifact's manifest.
    interest_boost : float, default 1.0
        Declared interests multiply a matching course's score by ``1 + interest_boost``.
    learning_rate, max_iter, max_leaf_nodes : gradient-boosting params.
    random_state : int or None, default 0

    Side information
    ----------------
    ``fit(user_items, user_band, user_community, user_attributes, item_category, item_bands,
    item_community, item_features, item_temporal, validation=(fit_matrix, target_matrix))``:
    arrays over users / items as documented in :meth:`_fit`. ``score(..., user_band,
    user_community, user_interests, user_attributes, allowed)`` for the requested users
    (omitted: the values stored at fit time for known users, unknown for the others);
    ``allowed`` is one mask over the items or one per user.
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
        "holdout_sources_",
        "holdout_component_recs_",
        "holdout_blend_recs_",
        "served_by_",
        "n_categories_",
        "n_communities_",
        "calibration_x_",
        "calibration_y_",
        "calibration_floor_",
        "calibration_horizon_days_",
        "calibration_lead_days_",
        "calibration_active_share_",
        "calibration_lag_days_",
        "calibration_exposure_power_",
        "calibration_new_x_",
        "calibration_new_y_",
    )
    # Models saved before calibration existed load without it (they cannot give probabilities);
    # those saved before the blended sources, without their held-out lists.
    _optional_arrays = ("holdout_blend_recs_",
                        "calibration_x_", "calibration_y_", "calibration_floor_",
                        "calibration_horizon_days_", "calibration_lead_days_",
                        "calibration_lag_days_", "calibration_exposure_power_",
                        "calibration_active_share_", "calibration_new_x_",
                        "calibration_new_y_")

    def __init__(
        self,
        ease_l2: float = 200.0,
        knn_neighbours: int = 100,
        als_factors: int = 0,
        als_regularization: float = 0.05,
        als_iterations: int = 12,
        ease_weighting: str = "raw",
        knn_weighting: str = "raw",
        als_weighting: str = "raw",
        factor_ae_factors: int = 0,
        factor_ae_epochs: int = 20,
        factor_ae_l2: float = 1e-4,
        factor_ae_weighting: str = "raw",
        factor_ae_epoch_users: int | None = 20000,
        recent_window_days: float | None = None,
        n_candidates: int = 50,
        max_train_users: int = 20000,
        negatives_per_user: int = 30,
        holdout_fraction: float = 0.2,
        interest_boost: float = 1.0,
        learning_rate: float = 0.1,
        max_iter: int = 100,
        max_leaf_nodes: int = 15,
        random_state: int | None = 0,
    ):
        self.ease_l2 = ease_l2
        self.knn_neighbours = knn_neighbours
        self.als_factors = als_factors
        self.als_regularization = als_regularization
        self.als_iterations = als_iterations
        self.ease_weighting = ease_weighting
        self.knn_weighting = knn_weighting
        self.als_weighting = als_weighting
        self.factor_ae_factors = factor_ae_factors
        self.factor_ae_epochs = factor_ae_epochs
        self.factor_ae_l2 = factor_ae_l2
        self.factor_ae_weighting = factor_ae_weighting
        self.factor_ae_epoch_users = factor_ae_epoch_users
        self.recent_window_days = recent_window_days
        self.n_candidates = n_candidates
        self.max_train_users = max_train_users
        self.negatives_per_user = negatives_per_user
        self.holdout_fraction = holdout_fraction
        self.interest_boost = interest_boost
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.random_state = random_state

    def _validate_params(self) -> None:
        check_param("ease_l2", self.ease_l2, "float", low=0.0, low_inclusive=False)
        check_param("knn_neighbours", self.knn_neighbours, "int", low=1)
        check_param("als_factors", self.als_factors, "int", low=0)
        check_param("als_regularization", self.als_regularization, "float", low=0.0)
        check_param("als_iterations", self.als_iterations, "int", low=1)
        check_param("factor_ae_factors", self.factor_ae_factors, "int", low=0)
        check_param("factor_ae_epochs", self.factor_ae_epochs, "int", low=0)
        check_param("factor_ae_l2", self.factor_ae_l2, "float", low=0.0)
        if self.factor_ae_epoch_users is not None:
            check_param("factor_ae_epoch_users", self.factor_ae_epoch_users, "int", low=1)
        for name in ("ease_weighting", "knn_weighting", "als_weighting", "factor_ae_weighting"):
            check_weighting(name, getattr(self, name))
        if self.recent_window_days is not None:
            check_param("recent_window_days", self.recent_window_days, "float", low=0.0,
                        low_inclusive=False)
        check_param("n_candidates", self.n_candidates, "int", low=1)
        check_param("max_train_users", self.max_train_users, "int", low=1)
        check_param("negatives_per_user", self.negatives_per_user, "int", low=0)
        check_param("holdout_fraction", self.holdout_fraction, "float", low=0.0, high=1.0,
                    high_inclusive=False)
        check_param("interest_boost", self.interest_boost, "float", low=0.0)
        check_param("learning_rate", self.learning_rate, "float", low=0.0, low_inclusive=False)
        check_param("max_iter", self.max_iter, "int", low=1)
        check_param("max_leaf_nodes", self.max_leaf_nodes, "int", low=2)
        if self.random_state is not None:
            check_param("random_state", self.random_state, "int", low=0)

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
        item_metadata: Any = None,
        item_temporal: Any = None,
        validation: Any = None,
        validation_candidates: Any = None,
        pair_age: Any = None,
    ) -> None:
        """Fit the re-ranker on ``validation``, then the components on ``X``.

        ``user_band`` / ``user_community`` / ``item_category`` / ``item_community``: int arrays
        (-1 = unknown); ``item_bands``: bool (n_items, 4) target bands; ``item_features``: sparse
        (n_items, n_features) content rows (default: one feature per item); ``item_metadata``:
        sparse (n_items, n_columns), the content rows without the title's text (category,
        target bands, tags, fee tier), from which the factor autoencoder ranks a course
        nobody has taken yet (default: none);
        ``user_attributes``: int (n_users, n_attributes) codes of the users' categorical
        profile columns (gender, region, ...; -1 unknown), whose category preferences become
        the ``profile_category`` signal; ``item_temporal``: float (n_items, 3) recent
        activity, days since first and since last interaction; ``validation``:
        ``(fit_matrix, target_matrix[, item_temporal[, pair_age]])``, matrices (n_users,
        n_items): the history before a validation cut, the positives after it, the items'
        activity then and the age of each pair's latest event then; ``pair_age``: the same
        ages at the cut of ``X`` (both needed only with ``recent_window_days``).
        ``validation_candidates`` (item indices, optional) restricts the re-ranker's training
        rows to the items the lists will be drawn from, when the evaluation protocol ranks a
        subset (the cold-item protocol ranks only the new items).
        """
        n_users, n_items = X.shape
        self._store_side(n_users, n_items, user_band=user_band, user_community=user_community,
                         user_attributes=user_attributes, item_category=item_category,
                         item_bands=item_bands, item_community=item_community,
                         item_temporal=item_temporal)
        fit_X, target, temporal_at_cut, ages_at_cut = _validation_cut(validation, X.shape)
        features = item_features if item_features is not None else sp.identity(n_items, "f4", "csr")
        allowed = None
        if validation_candidates is not None:
            allowed = np.zeros(n_items, dtype=bool)
            allowed[np.asarray(validation_candidates, dtype=np.int64)] = True
        full_temporal = self.item_temporal_
        self.served_by_ = np.array("reranker")  # until training's guard says otherwise
        # Stage 1 as it stood at the cut: the trees learn what its signals predict after it.
        self._fit_stage_one(fit_X, features,
                            full_temporal if temporal_at_cut is None else temporal_at_cut,
                            ages_at_cut, item_metadata)
        self._fit_reranker(fit_X, target, allowed)
        # Refit on everything: serving ranks from the full history.
        self._fit_stage_one(X, features, full_temporal, pair_age, item_metadata)

    def _store_side(self, n_users: int, n_items: int, *, user_band, user_community,
                    user_attributes, item_category, item_bands, item_community,
                    item_temporal) -> None:
        """Check the side information and keep it as fitted arrays."""
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

    def _fit_stage_one(self, X: sp.csr_matrix, features: Any, temporal: np.ndarray,
                       pair_age: Any = None, metadata: Any = None) -> None:
        """Fit the components, the item counts and the profile lifts on ``X``."""
        if self.recent_window_days is not None and pair_age is None:
            raise ValueError("recent_window_days needs pair_age in fit (and as the fourth "
                             "element of validation): the age of each pair's latest event")
        self.item_temporal_ = temporal
        self.item_count_ = np.asarray((X != 0).sum(axis=0)).ravel().astype(np.float32)
        comps = new_components(
            ease_l2=self.ease_l2, knn_neighbours=self.knn_neighbours,
            als_factors=self.als_factors, als_regularization=self.als_regularization,
            als_iterations=self.als_iterations, random_state=self.random_state,
            recent_window_days=self.recent_window_days,
            weighting={"ease": self.ease_weighting, "knn": self.knn_weighting,
                       "als": self.als_weighting, "factor_ae": self.factor_ae_weighting},
            factor_ae=(None if not self.factor_ae_factors else
                       {"factors": self.factor_ae_factors, "epochs": self.factor_ae_epochs,
                        "l2": self.factor_ae_l2, "epoch_users": self.factor_ae_epoch_users}),
        )
        self._components = fit_components(
            comps, X, user_band=self.user_band_, user_community=self.user_community_,
            item_category=self.item_category_, item_features=features,
            item_recent=np.expm1(temporal[:, 0].astype(np.float64)),  # log1p counts stored
            pair_age=pair_age, item_metadata=metadata,
        )
        self.profile_lift_, self.profile_offsets_ = profile_lifts(
            X, self.user_attributes_, self.item_category_, self.n_categories_)

    # -- the guard -----------------------------------------------------------------------------
    def serve_with(self, source: str) -> HybridRanker:
        """Rank with ``source``: ``"reranker"`` (the trees), one component's own scores, or
        ``"reranker+<component>"``, the trees' order and that component's averaged
        (:func:`~models.hybrid.reranker.blended`).

        Training calls this when the held-out validation users showed that source to be the
        best (:func:`recommender.training.inputs.guard`), so a served model is never one that
        lost that comparison; the candidates, filters and explanations stay the hybrid's.
        """
        self._check_fitted()
        if source not in self.sources:
            raise ValueError(f"source={source!r}: must be one of {', '.join(self.sources)}")
        self.served_by_ = np.array(source)
        self._calibrate(source)
        return self

    @property
    def sources(self) -> tuple[str, ...]:
        """What can rank the candidates: the trees, each component, and the trees blended
        with each component."""
        names = self.components
        return ("reranker", *names, *(f"reranker+{name}" for name in names))

    @property
    def reranker_learned(self) -> bool:
        """Whether the trees saw both labels. With no validation positive among the candidates
        (a few validation users whose items no component proposes) they score every candidate
        the same, and training serves a component instead (see
        :func:`recommender.training.inputs.guard`)."""
        self._check_fitted()
        return self._reranker.trees.classes_.size > 1

    @property
    def served_by(self) -> str:
        """What ranks the candidates: one of :attr:`sources`."""
        self._check_fitted()
        return str(self.served_by_)

    def _candidate_scores(self, r: np.ndarray, i: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The served source's score of each candidate pair ``(r, i)`` with signal ``rows``,
        declared interests included."""
        trees, component = source_parts(str(self.served_by_))
        if component is None:
            score = self._reranker.predict(rows)
        elif not trees:
            score = component_score(rows, component)
        else:
            tree_rank = ranks_within_user(r, i, self._reranker.predict(rows), rows)
            score = blended(tree_rank, component_score(rows, component))
        return with_interests(score, rows, self.interest_boost)

    @property
    def _ties_by_signals(self) -> bool:
        """Whether equal scores go by the :data:`~models.hybrid.reranker.TIE_SIGNALS`: where
        the trees rank (alone or blended); a component served alone keeps its own order."""
        return source_parts(str(self.served_by_))[0]

    # -- scoring ------------------------------------------------------------------------------
    def _context(self, users: np.ndarray, user_band: Any = None, user_community: Any = None,
                 user_interests: Any = None, user_attributes: Any = None) -> Context:
        """What is known about ``users``: given values, else those stored at fit time."""
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
        return Context(band, community, interests, attributes)

    def _pair_rows(self, users: np.ndarray, X: sp.csr_matrix, ctx: Context,
                   allowed: Any, tie_order: Any = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates and their signal rows: (row index, item index, features)."""
        r, i, rows_of = self._candidates(users, X, ctx, allowed, tie_order)
        return r, i, rows_of(slice(None))

    def _candidates(self, users: np.ndarray, X: sp.csr_matrix, ctx: Context, allowed: Any,
                    tie_order: Any = None
                    ) -> tuple[np.ndarray, np.ndarray, Callable[[Any], np.ndarray]]:
        """Candidates as (row index, item index) and a function giving the signal rows of
        the pairs it selects (an index into both, keeping them sorted by row): training keeps
        a few pairs per user and builds rows for those alone. ``tie_order``: see
        :meth:`_score`."""
        scores = component_scores(self._components, users, X, ctx.band, ctx.community)
        blocked = blocked_items(X, allowed)
        # Only the allowed courses can be candidates or outrank one (a blocked course scores
        # -inf), so the rest of the catalogue is left out before the per-item work; the
        # candidates are the same (ties go by the lower index either way, see top_columns).
        # (Users ranked together, each with their own mask: the courses any of them may get.)
        columns = None if allowed is None else np.flatnonzero(
            allowed if np.ndim(allowed) == 1 else np.any(allowed, axis=0))
        if columns is not None and columns.size < blocked.shape[1]:
            scores = {name: s[:, columns] for name, s in scores.items()}
            blocked = blocked[:, columns]
            tie_order = None if tie_order is None else tie_order[:, columns]
        else:
            columns = None
        category = self.item_category_ if columns is None else self.item_category_[columns]
        candidate, masked, ordered = candidate_mask(scores, blocked, ctx.interests,
                                                    category, self.n_candidates, tie_order)
        r, at = np.nonzero(candidate)
        i = at if columns is None else columns[at]
        profile = profile_scores(ctx.attributes, self.profile_lift_, self.profile_offsets_,
                                 self.n_categories_)
        items = ItemTable(self.item_category_, self.item_bands_, self.item_community_,
                          self.item_count_, self.item_temporal_, self.n_categories_)
        ranges = score_ranges(masked, r, at)

        def rows_of(select: Any) -> np.ndarray:
            return signal_rows(masked, r[select], at[select], X, ctx, items, profile, ranges,
                               columns=columns, ordered=ordered)

        return r, i, rows_of

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
        tie_order: Any = None,
    ) -> np.ndarray:
        """The scores of every item; ``tie_order`` (n_users, n_items) of distinct numbers, if
        given, orders the courses equal in score (and, where the trees rank, in every tie
        signal), where serving takes the lower item index: at the candidates' cut and in the
        list. The benchmark gives it its random order among equal scores, so that a course the
        hybrid knows nothing more about is not placed by its id (every other model's equal
        scores are ordered at random there)."""
        ctx = self._context(users, user_band, user_community, user_interests, user_attributes)
        if tie_order is not None:
            tie_order = np.asarray(tie_order, dtype=np.float64).reshape(users.size, X.shape[1])
        r, i, rows = self._pair_rows(users, X, ctx, allowed, tie_order)
        # Items outside the candidate set rank below every candidate, by global popularity.
        pop = self.item_count_ / max(float(self.item_count_.max(initial=0)), 1.0)
        out = np.broadcast_to(-2.0 + pop, (users.size, X.shape[1])).astype(np.float32)
        if rows.shape[0]:
            # equal scores stepped apart in the order the served lists use (see untied)
            ties = None if tie_order is None else tie_order[r, i]
            tie_rows = rows if self._ties_by_signals else None
            out[r, i] = untied(r, i, self._candidate_scores(r, i, rows), tie_rows, ties)
        return out

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
        return top_n(r, i, self._candidate_scores(r, i, rows), rows, users.size, n,
                     by_tie_signals=self._ties_by_signals)

    # -- explanations -------------------------------------------------------------------------
    @property
    def components(self) -> tuple[str, ...]:
        """The names of the fitted components, in :data:`COMPONENTS` order (ALS only if on)."""
        self._check_fitted()
        return self._component_names()

    def _component_names(self) -> tuple[str, ...]:
        return tuple(name for name in COMPONENTS if name in self._components)

    def component_ranks(self, signals: np.ndarray) -> dict[str, np.ndarray]:
        """Each component's 0-based rank of the ranked courses whose rows :meth:`rank` gave.

        ``inf`` where the component is off or scores the course 0, so a reason can be drawn
        only from a component that exists and ranked the course (see
        :func:`models.hybrid.signals.component_ranks`).
        """
        return component_ranks(signals, self.components)

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
        """Write ``model.npz``, one folder per component and the re-ranker's trees."""
        directory = Path(directory)
        path = super().save(directory)
        for name, model in self._components.items():
            model.save(directory / name)
        self._reranker.save(directory)
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
        model._reranker = ReRanker.load(directory)
        return model


def _validation_cut(validation: Any, shape: tuple[int, int]):
    """``(fit_matrix, target, item_temporal at the cut or None, pair_age at the cut or None)``,
    checked against ``shape``."""
    if validation is None:
        raise ValueError(
            "validation must be (fit_matrix, target_matrix): the hybrid learns "
            "its re-ranker on a validation cut from the training period"
        )
    fit_X, target = (sp.csr_matrix(m, dtype=np.float32) for m in validation[:2])
    if fit_X.shape != shape or target.shape != shape:
        raise ValueError(
            f"validation matrices must have shape {shape}, got {fit_X.shape} and {target.shape}"
        )
    target = target.copy()
    target.eliminate_zeros()
    # the items' activity as seen at the validation cut
    temporal = (np.asarray(validation[2], dtype=np.float32)
                if len(validation) > 2 and validation[2] is not None else None)
    ages = validation[3] if len(validation) > 3 else None
    return fit_X, target, temporal, ages


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
