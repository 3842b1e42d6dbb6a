"""Matrix factorisation with implicit (CPU): ALS and BPR behind the shared interface.

Both wrap ``implicit.cpu`` directly (never the GPU factory, so results do not depend on the
machine) and fit inside ``threadpool_limits(1, "blas")``: implicit parallelises over users with
its own threads, and a multi-threaded OpenBLAS underneath makes it many times slower (implicit
warns about exactly this).

Scoring from the row ("fold-in"): a user's factors are recomputed from the history given at
scoring time, against the fixed item factors, with the model's own objective: ALS by one exact
least-squares solve (implicit's ``recalculate_user``), BPR by maximising that user's pairwise
log-likelihood (bound optimisation, a few milliseconds per user). ALS folds in every user by
default; BPR uses its learned factors for users seen at fit time and folds in only unseen
users. A user with an empty row gets the mean user factor, i.e. a popularity-like ranking
instead of all-zero scores.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from threadpoolctl import threadpool_limits

from models.base import Recommender, check_bool, check_param
from models.weighting import ValueWeighting


def _check_common(model: Recommender) -> None:
    check_param("factors", model.factors, "int", low=1)
    check_param("regularization", model.regularization, "float", low=0.0)
    check_param("iterations", model.iterations, "int", low=1)
    check_param("num_threads", model.num_threads, "int", low=0)
    rs = model.random_state
    if rs is not None:
        check_param("random_state", rs, "int", low=0)
    check_bool("fold_in", model.fold_in)


# Batches smaller than this are folded in on one thread.
_PARALLEL_FOLD_IN = 256


def _als_fold_in(model: ALS, X: sp.csr_matrix) -> np.ndarray:
    """Exact implicit-ALS user factors for each row of ``X`` (confidence-weighted least squares).

    Uses implicit's native Cholesky solver; the solver object and its cached YᵀY are reused
    across calls and dropped by the next ``fit``.
    """
    cache = model.__dict__.setdefault("_cache", {})
    solver = cache.get("fold_in")
    if solver is None:
        with threadpool_limits(1, "blas"):
            solver = AlternatingLeastSquares(
                factors=model.item_factors_.shape[1],
                regularization=float(model.regularization),
                alpha=float(model.alpha),
                dtype=np.float32,
                num_threads=int(model.num_threads),
            )
        solver.item_factors = model.item_factors_
        cache["fold_in"] = solver
    # Starting a thread pool costs more than solving a few users (and hurts a busy server).
    solver.num_threads = int(model.num_threads) if X.shape[0] >= _PARALLEL_FOLD_IN else 1
    return solver.recalculate_user(np.arange(X.shape[0]), X)


# The fold-in's data term is a mean over (seen, unseen) pairs, of order 1 whatever the history
# length, so a unit ridge keeps the user near the population until the row says otherwise.
_BPR_FOLD_IN_RIDGE = 1.0


class _BPRFoldIn:
    """Per-model constants of the BPR fold-in: item factors in float64, their Gram and sum."""

    def __init__(self, item_factors: np.ndarray, mean_user: np.ndarray, l2: float):
        self.Y = item_factors[:, :-1].astype(np.float64)
        self.bias = item_factors[:, -1].astype(np.float64)
        self.gram = self.Y.T @ self.Y
        self.total = self.Y.sum(axis=0)
        self.u0 = mean_user[:-1].astype(np.float64)
        self.l2 = l2

    def __call__(self, items: np.ndarray, weights: np.ndarray, steps: int = 100) -> np.ndarray:
        """One user's factors (with the trailing 1 for the bias) from their items and weights.

        Maximises ``mean_{i in row, j not in row} w_i log σ(u·(y_i - y_j)) - l2/2 ‖u - u0‖²``.
        The ridge pulls towards the mean user ``u0``, so a short history moves the user only
        as far as it has evidence for (the row's unseen items are negatives here, even those
        of the same kind). Solved by bound optimisation (Böhning's bound: σ' <= 1/4): the
        curvature matrix is fixed, factorised once, and every step increases the objective,
        so there is no line search and each step costs two matrix-vector products.
        """
        Y, bias, l2 = self.Y, self.bias, self.l2
        negatives = np.ones(len(Y), dtype=bool)
        negatives[items] = False
        n_neg = int(negatives.sum())
        if n_neg == 0:
            return np.append(self.u0, 1.0).astype(np.float32)
        Yp, Yn, bp, bn = Y[items], Y[negatives], bias[items], bias[negatives]
        w = weights.astype(np.float64) / (float(weights.sum()) * n_neg)
        # sum_ij w_i (y_i - y_j)(y_i - y_j)^T without forming the pairs.
        sum_n = self.total - Yp.sum(axis=0)
        gram_n = self.gram - Yp.T @ Yp
        wp = Yp.T @ w
        curvature = (
            n_neg * (Yp.T * w) @ Yp - np.outer(wp, sum_n) - np.outer(sum_n, wp) + w.sum() * gram_n
        )
        bound = scipy.linalg.cho_factor(0.25 * curvature + l2 * np.eye(len(self.u0)))
        u = self.u0.copy()
        for _ in range(steps):
            margin = (Yp @ u + bp)[:, None] - (Yn @ u + bn)[None, :]
            g = w[:, None] * 0.5 * (1.0 - np.tanh(0.5 * margin))  # w σ(-margin), overflow-free
            grad = g.sum(1) @ Yp - g.sum(0) @ Yn - l2 * (u - self.u0)
            step = scipy.linalg.cho_solve(bound, grad)
            u += step
            if np.linalg.norm(step) <= 1e-4 * (1.0 + np.linalg.norm(u)):
                break
        return np.append(u, 1.0).astype(np.float32)


class _Factorization(Recommender):
    """Shared scoring for the factor models: ``user_factors_ @ item_factors_.T``."""

    _fitted_arrays = ("user_factors_", "item_factors_", "mean_user_factor_")

    def _fold(self, X: sp.csr_matrix) -> np.ndarray:
        """User factors for non-empty rows of ``X``, from the rows alone."""
        raise NotImplementedError

    def _user_vectors(self, users: np.ndarray, X: sp.csr_matrix) -> np.ndarray:
        known = self._known(users, self.n_users_)
        fold = ~known if not self.fold_in else np.ones(len(users), dtype=bool)
        vectors = np.empty((len(users), self.item_factors_.shape[1]), dtype=np.float32)
        vectors[known] = self.user_factors_[users[known]]
        empty = np.diff(X.indptr) == 0
        solve = fold & ~empty
        if solve.any():
            vectors[solve] = self._fold(X[np.flatnonzero(solve)])
        vectors[fold & empty] = self.mean_user_factor_
        return vectors

    def _score(self, users: np.ndarray, X: sp.csr_matrix) -> np.ndarray:
        return self._user_vectors(users, X) @ self.item_factors_.T

    def _fit_implicit(self, model_class: type, X: sp.csr_matrix, **extra: float) -> None:
        """Fit an ``implicit.cpu`` model with the shared parameters plus ``extra``; keep factors."""
        with threadpool_limits(1, "blas"):
            model = model_class(
                factors=int(self.factors),
                regularization=float(self.regularization),
                dtype=np.float32,
                iterations=int(self.iterations),
                num_threads=int(self.num_threads),
                random_state=self.random_state,
                **extra,
            )
            model.fit(X, show_progress=False)
        self._store(model.user_factors, model.item_factors)

    def _store(self, user_factors: np.ndarray, item_factors: np.ndarray) -> None:
        self.user_factors_ = np.ascontiguousarray(user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(item_factors, dtype=np.float32)
        self.mean_user_factor_ = self.user_factors_.mean(axis=0).astype(np.float32)


class ALS(ValueWeighting, _Factorization):
    """Implicit-feedback alternating least squares (Hu, Koren & Volinsky 2008) via implicit.

    Parameters
    ----------
    factors : int, default 64
        Latent dimensions.
    regularization : float, default 0.01
        L2 penalty on the factors.
    alpha : float, default 1.0
        Confidence scaling of the interaction weights (C = alpha * weight).
    iterations : int, default 15
        ALS sweeps.
    random_state : int or None, default None
        Seed of the initial factors. ALS is deterministic given the seed whatever the number
        of threads: each sweep solves every user (then every item) independently.
    num_threads : int, default 0
        implicit's worker threads (0 = all cores).
    fold_in : bool, default True
        Recompute every user's factors from the row given at scoring time (an exact solve, so
        refreshed histories count); False uses the fit-time factors for known users.
    weighting : {"raw", "binary", "log"}, default "raw"
        How the matrix's values are read before ``alpha`` scales them
        (:mod:`models.weighting`).

    Attributes
    ----------
    user_factors_ : ndarray of float32, shape (n_users, factors)
    item_factors_ : ndarray of float32, shape (n_items, factors)
    mean_user_factor_ : ndarray of float32, shape (factors,)
    value_scale_ : float or None
        What ``weighting="log"`` reads as 1 (:class:`~models.weighting.ValueWeighting`).
    """

    _fitted_arrays = (*_Factorization._fitted_arrays, "value_scale_")
    _optional_arrays = ("value_scale_",)

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        random_state: int | None = None,
        num_threads: int = 0,
        fold_in: bool = True,
        weighting: str = "raw",
    ):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads
        self.fold_in = fold_in
        self.weighting = weighting

    def _fold(self, X: sp.csr_matrix) -> np.ndarray:
        return _als_fold_in(self, X)

    def _validate_params(self) -> None:
        _check_common(self)
        check_param("alpha", self.alpha, "float", low=0.0, low_inclusive=False)
        self._check_weighting()

    def _fit(self, X: sp.csr_matrix) -> None:
        self._fit_implicit(AlternatingLeastSquares, self._weigh_fit(X), alpha=float(self.alpha))

    def _score(self, users: np.ndarray, X: sp.csr_matrix) -> np.ndarray:
        return super()._score(users, self._weigh(X))


class BPR(_Factorization):
    """Bayesian personalised ranking (Rendle et al. 2009) via implicit.

    Parameters
    ----------
    factors : int, default 64
        Latent dimensions (implicit adds one more for the item bias).
    learning_rate : float, default 0.01
        SGD step size.
    regularization : float, default 0.01
        L2 penalty on the factors (also the ridge of the fold-in solve).
    iterations : int, default 100
        SGD epochs.
    random_state : int or None, default None
        Seed of the initial factors and the sampling: two fits with the same seed (and one
        thread) give identical factors.
    num_threads : int, default 1
        implicit's worker threads (0 = all cores). One by default, unlike ALS: implicit's
        parallel SGD is lock-free (Hogwild), so with more threads the updates interleave
        differently on every run and a seed no longer fixes the result.
    fold_in : bool, default False
        Recompute every user's factors from the row given at scoring time; by default only
        users unseen at fit time are folded in (BPR's own factors rank better than a
        fold-in, which sees only the fixed item factors). The fold-in maximises the BPR
        likelihood of the row's items over all other items (bound optimisation, a unit ridge
        towards the mean user factor).

    Attributes
    ----------
    user_factors_ : ndarray of float32, shape (n_users, factors + 1)
        The last column is 1 (it multiplies the item bias).
    item_factors_ : ndarray of float32, shape (n_items, factors + 1)
        The last column is the item bias.
    mean_user_factor_ : ndarray of float32, shape (factors + 1,)
    """

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        random_state: int | None = None,
        num_threads: int = 1,
        fold_in: bool = False,
    ):
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads
        self.fold_in = fold_in

    def _validate_params(self) -> None:
        _check_common(self)
        check_param("learning_rate", self.learning_rate, "float", low=0.0, low_inclusive=False)

    def _fold(self, X: sp.csr_matrix) -> np.ndarray:
        # One user at a time: fold-ins are for users unseen at fit time, a few per request.
        cache = self.__dict__.setdefault("_cache", {})
        if "fold_in" not in cache:
            cache["fold_in"] = _BPRFoldIn(
                self.item_factors_, self.mean_user_factor_, _BPR_FOLD_IN_RIDGE
            )
        fold = cache["fold_in"]
        rows = [slice(X.indptr[r], X.indptr[r + 1]) for r in range(X.shape[0])]
        return np.stack([fold(X.indices[r], X.data[r]) for r in rows])

    def _fit(self, X: sp.csr_matrix) -> None:
        self._fit_implicit(BayesianPersonalizedRanking, X, learning_rate=float(self.learning_rate))


__all__ = ["ALS", "BPR"]
