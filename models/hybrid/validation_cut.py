"""What the hybrid keeps from its validation cut besides the trees: held-out lists and calibration.

The trees learn on the validation users; some of those users are ranked by trees that never saw
them (cross-fitted on small validation sets), and every single component ranks the same users,
so that training can check the trees against each component (the guard). The held-out users'
candidate pairs also calibrate the served scores into take-up probabilities
(:mod:`models.hybrid.calibration`): daily rates per course, with a map of their own for courses
that had no history at the cut. :class:`ValidationCutMixin` holds these steps of
:class:`~models.hybrid.ranker.HybridRanker`; it reads the ranker's fitted attributes and
scoring hooks and has no state of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

import numpy as np
import scipy.sparse as sp

from models.base import batch_size
from models.hybrid.calibration import (
    Calibration,
    effective_exposure,
    fit_exposure_power,
    fit_maps,
    floor_rate,
    scale_to_horizon,
)
from models.hybrid.candidates import (
    blocked_items,
    component_scores,
)
from models.hybrid.reranker import (
    ItemCrossFit,
    ReRanker,
    blended,
    component_score,
    holdout_folds,
    new_item_shares,
    ranks_within_user,
    source_parts,
    top_n,
    training_rows,
    training_users,
    validation_users,
    with_interests,
)


class ValidationCutMixin:
    """The held-out lists and the calibration of :class:`~models.hybrid.ranker.HybridRanker`."""

    def _fit_reranker(self, fit_X: sp.csr_matrix, target: sp.csr_matrix,
                      allowed: np.ndarray | None) -> None:
        """Train the trees on the validation users' candidates at the cut, labelled by
        ``target``, and keep the lists of held-out users made by trees that never saw them."""
        users = validation_users(target)
        folds = holdout_folds(users, self.holdout_fraction, self.random_state)
        row_users = training_users(users, folds, self.max_train_users, self.random_state)

        def pairs(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, Callable]:
            return self._candidates(batch, fit_X[batch], self._context(batch), allowed)

        rows, labels, owners, items = training_rows(pairs, target, row_users,
                                                    self.negatives_per_user, self.random_state)
        shares = new_item_shares(fit_X, target, allowed, self.random_state)
        held, lists, blend_lists, pairs_seen, fold_trees = [], [], [], [], []
        for fold in folds:
            learn = ~np.isin(owners, fold)
            # one set of trees per share of the new courses, each without that share's rows
            masks = [learn & ~share[items] for share in shares] or [learn]
            trees = ItemCrossFit([self._trees(rows[m], labels[m]) for m in masks], shares)
            fold_trees.append(trees.trees)
            held.append(fold)
            fold_lists, fold_pairs = self._holdout_pairs(fold, fit_X, target, allowed, trees)
            lists.append(fold_lists)
            blend_lists.append(fold_pairs.pop("blend_lists"))
            pairs_seen.append(fold_pairs)
        if len(folds) > 1:
            # Served: one set of each fold's trees and trees fitted on every row, averaged. On
            # small validation sets one fit's trees move with the users and negatives it
            # drew; their mean varies less and ranked better on every dataset tried
            # (docs/decisions.md).
            self._reranker = ReRanker.averaged([sets[0] for sets in fold_trees]
                                               + [self._trees(rows, labels)])
        elif fold_trees:
            # One held-out fold, whose users' rows were never built: its trees learned on
            # every row (or, between its sets, every row once).
            self._reranker = ReRanker.averaged(fold_trees[0])
        else:
            self._reranker = self._trees(rows, labels)
        self._store_holdout_lists(held, lists, blend_lists, fit_X, allowed)
        self._keep_calibration_pairs(pairs_seen)
        self._active_shares(fit_X, users)

    def _trees(self, rows: np.ndarray, labels: np.ndarray) -> ReRanker:
        return ReRanker.fit(
            rows, labels, learning_rate=self.learning_rate, max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes, random_state=self.random_state,
        )

    def _store_holdout_lists(self, held: list[np.ndarray], lists: list[np.ndarray],
                             blend_lists: list[np.ndarray], fit_X: sp.csr_matrix,
                             allowed: np.ndarray | None) -> None:
        """Top-10 lists of held-out validation users: the hybrid's (from trees that never saw
        them), each component's, and the trees' blended with each component, all from
        components fitted before the cut. They give the honest validation figures of this fit
        and let training choose what ranks the candidates (:meth:`serve_with`)."""
        users = np.concatenate(held) if held else np.zeros(0, dtype=np.int64)
        order = np.argsort(users, kind="stable")
        n_components = len(self._component_names())
        self.holdout_users_ = users[order]
        self.holdout_recs_ = (np.vstack(lists)[order] if lists
                              else np.zeros((0, 10), dtype=np.int64))
        self.holdout_blend_recs_ = (np.concatenate(blend_lists, axis=1)[:, order] if lists
                                    else np.zeros((n_components, 0, 10), dtype=np.int64))
        self.holdout_sources_ = np.array(self._component_names())
        self.holdout_component_recs_ = self._component_lists(self.holdout_users_, fit_X, allowed)
        pop_band = self._component_names().index("pop_band")
        self.holdout_popularity_recs_ = self.holdout_component_recs_[pop_band]

    def holdout_lists(self, source: str) -> np.ndarray:
        """The held-out users' top-10 lists ranked by ``source`` (one of :attr:`sources`),
        rows as :attr:`holdout_users_`."""
        trees, component = source_parts(source)
        if component is None:
            return self.holdout_recs_
        at = list(self.holdout_sources_).index(component)
        return (self.holdout_blend_recs_ if trees else self.holdout_component_recs_)[at]

    def _component_lists(self, users: np.ndarray, fit_X: sp.csr_matrix,
                         allowed: np.ndarray | None, n: int = 10) -> np.ndarray:
        """Each component's own top-``n`` for ``users``: (n_components, n_users, n)."""
        out = np.full((len(self._component_names()), users.size, n), -1, dtype=np.int64)
        size = batch_size(fit_X.shape[1], 1000)
        for start in range(0, users.size, size):
            batch = users[start:start + size]
            X = fit_X[batch]
            ctx = self._context(batch)
            scores = component_scores(self._components, batch, X, ctx.band, ctx.community)
            blocked = blocked_items(X, allowed)
            for c, name in enumerate(self._component_names()):
                masked = np.where(blocked, -np.inf, scores[name])
                top = np.argsort(-masked, axis=1, kind="stable")[:, :n]
                ok = np.take_along_axis(masked, top, axis=1) > -np.inf
                out[c, start:start + batch.size, :top.shape[1]] = np.where(ok, top, -1)
        return out

    # -- calibration --------------------------------------------------------------------------
    def _holdout_pairs(self, fold: np.ndarray, fit_X: sp.csr_matrix, target: sp.csr_matrix,
                       allowed: np.ndarray | None,
                       trees: ItemCrossFit) -> tuple[np.ndarray, dict]:
        """Held-out users' top-10 lists from the trees, and their candidate pairs as every
        source scores them, with their labels (one pass over the pairs for both).

        Column 0 is the trees' score (``trees``, which never saw these users, nor the new
        courses they score), column ``1 + c`` the
        ``c``-th component's served score (1 / (1 + its rank)); ``tree_rank`` is each pair's
        place in its user's list by the trees, and ``blend_lists`` the users' top-10 lists of
        the trees blended with each component; the label says whether the pair was taken up
        after the validation cut. Also counts, per item, the allowed pairs outside the
        candidates and how many of them were taken up (the calibration's floor).
        """
        names = self._component_names()
        n_src, n_items = 1 + len(names), fit_X.shape[1]
        out = {"scores": [], "labels": [], "items": [], "tree_rank": [],
               "outside": np.zeros(n_items), "outside_taken": np.zeros(n_items),
               "blend_lists": np.full((len(names), fold.size, 10), -1, dtype=np.int64)}
        lists = np.full((fold.size, 10), -1, dtype=np.int64)
        size = batch_size(n_items, 1000)
        for start in range(0, fold.size, size):
            batch = fold[start:start + size]
            X = fit_X[batch]
            r, i, rows = self._pair_rows(batch, X, self._context(batch), allowed)
            scores = np.empty((r.size, n_src), dtype=np.float32)
            if r.size:
                scores[:, 0] = trees.predict(rows, i)
                for c, name in enumerate(names, 1):
                    scores[:, c] = component_score(rows, name)
            # the order the trees serve: their score with declared interests (none here, so
            # it is also the trees' own order, which the blends take)
            tree_rank = ranks_within_user(
                r, i, with_interests(scores[:, 0], rows, self.interest_boost), rows)
            listed = tree_rank < 10
            lists[start + r[listed], tree_rank[listed].astype(np.int64)] = i[listed]
            for c in range(len(names)):
                blend = blended(tree_rank, scores[:, 1 + c])
                # A user's 10th best blend scores above 0.05 (the trees' 10th place alone
                # gives 0.5 / 10), so only pairs above 1/21 (ranked under 20 by the trees or
                # the component) can be listed: sorting those alone gives the same lists.
                near = blend > 1 / 21
                out["blend_lists"][c, start:start + batch.size] = top_n(
                    r[near], i[near], blend[near], rows[near], batch.size, 10)[0]
            truth = target[batch].toarray() > 0
            labels = truth[r, i]
            open_pairs = ~blocked_items(X, allowed)
            out["scores"].append(scores)
            out["labels"].append(labels)
            out["items"].append(i.astype(np.int64))
            out["tree_rank"].append(tree_rank.astype(np.float32))
            out["outside"] += open_pairs.sum(axis=0) - np.bincount(i, minlength=n_items)
            out["outside_taken"] += ((open_pairs & truth).sum(axis=0)
                                     - np.bincount(i[labels], minlength=n_items))
        return lists, out

    def _keep_calibration_pairs(self, parts: list[dict]) -> None:
        """Keep the held-out pairs (in memory only) and calibrate the trees on them; courses
        with no history at the validation cut (``item_count_`` is still the cut's) are marked
        new."""
        n_src, n_items = 1 + len(self._component_names()), self.n_items_
        self._calibration_pairs = {
            "new": self.item_count_ == 0,
            "scores": np.concatenate([s for p in parts for s in p["scores"]]
                                     or [np.zeros((0, n_src), np.float32)]),
            "labels": np.concatenate([x for p in parts for x in p["labels"]]
                                     or [np.zeros(0, bool)]),
            "items": np.concatenate([x for p in parts for x in p["items"]]
                                    or [np.zeros(0, np.int64)]),
            "tree_rank": np.concatenate([x for p in parts for x in p["tree_rank"]]
                                        or [np.zeros(0, np.float32)]),
            "outside": sum((p["outside"] for p in parts), np.zeros(n_items)),
            "outside_taken": sum((p["outside_taken"] for p in parts), np.zeros(n_items)),
        }
        self.calibration_horizon_days_ = np.array(np.nan)
        self.calibration_lead_days_ = np.array(np.inf)
        self.calibration_lag_days_ = np.array(np.inf)
        self._calibrate("reranker")

    def _active_shares(self, fit_X: sp.csr_matrix, users: np.ndarray) -> None:
        """Share of users without / with history at the validation cut who took anything up
        after it. The held-out pairs come from such users only (the validation users), so
        their rate is P(taken | the user took something up); a resident's probability is that
        times the share of residents like them (no history, or some) who took something up."""
        has = np.diff(fit_X.indptr) > 0
        active = np.zeros(has.size, dtype=bool)
        active[users] = True
        self.calibration_active_share_ = np.array(
            [(active & ~has).sum() / max(int((~has).sum()), 1),
             (active & has).sum() / max(int(has.sum()), 1)], dtype=np.float64)

    def _calibrate(self, source: str) -> None:
        """Fit the isotonic map of ``source``'s scores on the held-out pairs, if kept: per
        validation period, or, once :meth:`restrict_calibration` gave each course's exposure,
        per day of exposure (days counted to the power
        :func:`~models.hybrid.calibration.fit_exposure_power` finds)."""
        pairs = getattr(self, "_calibration_pairs", None)
        if pairs is None:  # a loaded model: its calibration belongs to another source
            self.calibration_x_ = self.calibration_y_ = np.zeros(0)
            self.calibration_new_x_ = self.calibration_new_y_ = np.zeros(0)
            return
        exposure = pairs.get("exposure")
        keep = (np.ones(pairs["labels"].size, bool) if exposure is None
                else exposure[pairs["items"]] > 0)
        scores, labels = self.held_out_scores(source)[keep], pairs["labels"][keep]
        # One map for courses with history, one for new courses, each when its pairs suffice
        # (else the map of all pairs).
        new = pairs["new"][pairs["items"][keep]]
        power = 1.0
        if exposure is None:
            days, outside_days = None, pairs["outside"]
            outside_taken = pairs["outside_taken"]
        else:
            power = fit_exposure_power(scores, labels, exposure[pairs["items"][keep]], new)
            exposure = effective_exposure(exposure, power)
            days, outside_days = exposure[pairs["items"][keep]], pairs["outside"] * exposure
            outside_taken = np.where(exposure > 0, pairs["outside_taken"], 0)
        self.calibration_exposure_power_ = np.array(power)
        known, fresh = fit_maps(scores, labels, days, new)
        self.calibration_x_, self.calibration_y_ = known
        self.calibration_new_x_, self.calibration_new_y_ = fresh
        self.calibration_floor_ = np.array(floor_rate(float(outside_taken.sum()),
                                                      float(outside_days.sum())))

    def held_out_scores(self, source: str) -> np.ndarray:
        """``source``'s score of every held-out candidate pair kept for calibration (fit
        time only: the pairs are not saved)."""
        pairs = self._calibration_pairs
        trees, component = source_parts(source)
        if component is None:
            return pairs["scores"][:, 0]
        column = pairs["scores"][:, 1 + self._component_names().index(component)]
        return (blended(pairs["tree_rank"], column) if trees else column).astype(np.float32)

    def restrict_calibration(self, exposure: np.ndarray, lead_days: float,
                             lag_days: float = float("inf")) -> Self:
        """Calibrate per day of exposure: ``exposure`` (days per item) is how many days of the
        validation period each course took new residents in, from ``lead_days`` before its
        start to ``lag_days`` after it (recorded, so forecasts use the same rule). Pairs of
        courses with no exposure are left out; the probabilities become daily ones."""
        pairs = getattr(self, "_calibration_pairs", None)
        if pairs is not None:
            pairs["exposure"] = np.asarray(exposure, dtype=np.float64)
            self._calibrate(self.served_by)
            self.calibration_horizon_days_ = np.array(1.0)
        self.calibration_lead_days_ = np.array(float(lead_days))
        self.calibration_lag_days_ = np.array(float(lag_days))
        return self

    def set_validation_horizon(self, days: float) -> Self:
        """Record how many days the validation targets span (training knows the cuts)."""
        self.calibration_horizon_days_ = np.array(float(days))
        return self

    @property
    def calibration(self) -> Calibration | None:
        """The fitted calibration, or None (a model saved before calibration existed, too
        few held-out pairs, or no known validation horizon)."""
        self._check_fitted()
        x = getattr(self, "calibration_x_", None)
        days = getattr(self, "calibration_horizon_days_", None)
        share = getattr(self, "calibration_active_share_", None)
        if (x is None or np.size(x) == 0 or days is None or not float(days) > 0
                or share is None):
            return None
        lead = getattr(self, "calibration_lead_days_", None)
        lag = getattr(self, "calibration_lag_days_", None)
        power = getattr(self, "calibration_exposure_power_", None)
        new_x = getattr(self, "calibration_new_x_", None)
        new = (None, None) if new_x is None or np.size(new_x) == 0 else (
            np.asarray(new_x, np.float64), np.asarray(self.calibration_new_y_, np.float64))
        return Calibration(np.asarray(x, np.float64), np.asarray(self.calibration_y_, np.float64),
                           float(self.calibration_floor_), float(days),
                           float("inf") if lead is None else float(lead),
                           tuple(float(v) for v in share),
                           float("inf") if lag is None else float(lag), *new,
                           1.0 if power is None else float(power))

    def take_up(self, users, X, horizon_days, **side) -> np.ndarray:
        """P(each user takes up each item within ``horizon_days``), calibrated: (u, n_items).

        ``horizon_days`` is a number or an array over items (each course's exposure: the days
        of the period it takes new residents in, see
        :func:`~models.hybrid.calibration.exposure_days`).

        Candidates get their calibrated score, allowed items outside the candidates the floor,
        seen and disallowed items 0; the validation horizon is scaled to ``horizon_days`` with
        a constant hazard (:func:`~models.hybrid.calibration.scale_to_horizon`) over the days
        counted to the calibration's ``exposure_power``.

        Raises
        ------
        ValueError
            When the model has no calibration (see :attr:`calibration`).
        """
        cal = self.calibration
        if cal is None:
            raise ValueError("the model has no calibration: retrain it")
        users = np.asarray(users, dtype=np.int64)
        X = self._check_rows(users, X)
        ctx = self._context(users, side.get("user_band"), side.get("user_community"),
                            side.get("user_interests"), side.get("user_attributes"))
        allowed = side.get("allowed")
        r, i, rows = self._pair_rows(users, X, ctx, allowed)
        p = np.where(blocked_items(X, allowed), 0.0, cal.floor).astype(np.float32)
        if r.size:
            p[r, i] = cal(self._candidate_scores(r, i, rows), new=self.item_count_[i] == 0)
        p *= np.where(np.diff(X.indptr) > 0, cal.active_share[1], cal.active_share[0]).astype(
            np.float32)[:, None]
        if cal.exposure_power != 1.0:  # a day of exposure counts for less (fit_exposure_power)
            horizon_days = effective_exposure(horizon_days, cal.exposure_power)
        return scale_to_horizon(p, horizon_days, cal.horizon_days)
