"""The one interface every model shares: ``fit``, batch-first ``recommend``, ``save``/``load``.

Modelled on implicit's ``recommender_base.py`` and scikit-learn's ``BaseEstimator``:

- ``__init__`` only stores parameters; ``fit`` validates them and the data, drops whatever an
  earlier fit left (every attribute that is not a parameter), and sets the fitted attributes
  (names ending in ``_``); ``fit`` returns ``self``.
- Subclasses implement two hooks: ``_fit(X, **side)`` and ``_score(users, X, **side)``. The public
  :meth:`Recommender.fit`, :meth:`Recommender.score` and :meth:`Recommender.recommend` validate
  their input once, here, and never differ between models.
- ``user_items`` is passed at scoring time, one row per requested user (as in implicit 0.7), so a
  user unseen at fit time (any index outside ``[0, n_users_)``, conventionally ``-1``) or a user
  whose history changed since the fit is scored from the row given.
- ``save`` writes ``model.npz``: the class name, the params as JSON text and the arrays named in
  ``_fitted_arrays``, all numeric or unicode, so ``load`` reads it with ``allow_pickle=False``.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

MODEL_FILE = "model.npz"
# Keys of model.npz that are not fitted attributes.
_CLASS_KEY = "__class__"
_PARAMS_KEY = "__params__"
# A sparse fitted attribute ``name`` is stored as these four arrays.
_SPARSE_PARTS = ("data", "indices", "indptr", "shape")
# Item-item models keep a dense copy of their item x item matrix for catalogues up to this size
# (36 MB at 3,000 courses, as EASE's own weights): scoring one resident is then a sum of their
# items' rows and a block of it is a plain lookup, instead of sparse products that cost
# ~0.1-0.3 ms per request in scipy's overhead alone.
DENSE_ITEM_LIMIT = 5000
# Users scored together make (users x items) float32 matrices, one per component in the hybrid:
# about this many cells each (32 MB), so a 40,000-item catalogue takes 200 users at a time
# where the district's 3,000 courses take the callers' usual 1,000-2,000.
BATCH_CELLS = 8_000_000


def batch_size(n_items: int, most: int) -> int:
    """How many users to score together: at most ``most``, fewer for a large catalogue, so
    that a batch's dense score rows stay near :data:`BATCH_CELLS` cells."""
    return max(1, min(int(most), BATCH_CELLS // max(int(n_items), 1)))


def most_used_items(X: sp.csr_matrix, max_items: int) -> np.ndarray:
    """The items with interactions in ``X``, at most ``max_items`` of them: those with the
    most users (ties by the lower index), sorted, int64."""
    users_per_item = X.getnnz(axis=0)
    active = np.flatnonzero(users_per_item > 0)
    if active.size > max_items:
        most_used = np.argsort(-users_per_item[active], kind="stable")[:max_items]
        active = np.sort(active[most_used])
    return active.astype(np.int64)


class NotFittedError(ValueError, AttributeError):
    """A model was used before ``fit`` (the same bases as scikit-learn's, so either is caught)."""


class Recommender(ABC):
    """Base class of every recommendation model.

    Subclasses list their fitted attributes in ``_fitted_arrays`` (numpy arrays, scipy sparse
    matrices or Python scalars) and implement ``_fit`` and ``_score``; everything else
    (validation, top-n, filtering, persistence, ``get_params``) is shared.

    Attributes
    ----------
    n_users_ : int
        Rows of the matrix the model was fitted on; user indices outside ``[0, n_users_)`` are
        users unseen at fit time.
    n_items_ : int
        Columns of that matrix: the item catalogue every score row covers.
    """

    _fitted_arrays: ClassVar[tuple[str, ...]] = ()
    # Fitted attributes that a file written by an earlier version may lack: they load as None
    # (and a None is not written), and the model reads None the way that version worked.
    _optional_arrays: ClassVar[tuple[str, ...]] = ()
    _registry: ClassVar[dict[str, type[Recommender]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # load() only instantiates classes registered here: a model file cannot name
        # arbitrary code to import.
        Recommender._registry[cls.__name__] = cls

    # -- parameters (scikit-learn conventions) ------------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self"]

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, exactly as stored."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Recommender:
        """Set constructor parameters (validated at the next ``fit``); returns ``self``."""
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"{type(self).__name__} has no parameter {name!r}; valid: {sorted(valid)}"
                )
            setattr(self, name, value)
        return self

    def validate_params(self) -> Recommender:
        """Check the parameters now (``fit`` checks them too); raise ``ValueError`` naming
        the parameter and value, else return ``self``."""
        self._validate_params()
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @classmethod
    def _all_fitted(cls) -> tuple[str, ...]:
        return ("n_users_", "n_items_", *cls._fitted_arrays)

    def is_fitted(self) -> bool:
        """Whether every fitted attribute is set."""
        # Serving asks several times per request and a fitted model stays fitted: once every
        # attribute was found, the answer is remembered (a hybrid has ~30 to look up).
        if self.__dict__.get("_fitted_seen"):
            return True
        fitted = all(hasattr(self, name) for name in self._all_fitted())
        if fitted:
            self.__dict__["_fitted_seen"] = True
        return fitted

    def _check_fitted(self) -> None:
        if not self.is_fitted():
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit(user_items) first"
            )

    # -- fit / score --------------------------------------------------------------------------

    def fit(self, user_items: sp.csr_matrix, **side: Any) -> Recommender:
        """Fit the model on a users × items matrix of interaction weights.

        Parameters
        ----------
        user_items : scipy.sparse matrix or ndarray, shape (n_users, n_items)
            Nonzero entries are interactions; their values are weights (confidences).
        **side
            Model-specific side information (see each model's docstring), e.g.
            ``user_groups`` for :class:`~models.popularity.Popularity`, ``item_features`` for
            :class:`~models.content.ContentModel`. Unknown keywords raise ``TypeError``.

        Returns
        -------
        self
        """
        self._validate_params()
        self._check_side(self._fit, side)
        X = _as_csr(user_items, "user_items")
        if X.shape[1] == 0:
            raise ValueError("user_items has no columns (n_items=0): nothing to recommend")
        self._forget_fit()
        self.n_users_, self.n_items_ = int(X.shape[0]), int(X.shape[1])
        self._fit(X, **side)
        return self

    def score(self, user_indices: np.ndarray, user_items: sp.csr_matrix, **side: Any) -> np.ndarray:
        """Scores of every item for a batch of users (higher is better).

        Parameters
        ----------
        user_indices : array of int, shape (n,)
            The users' row indices at fit time; any index outside ``[0, n_users_)`` (e.g. -1)
            is a user unseen at fit time.
        user_items : scipy.sparse matrix, shape (n, n_items_)
            Row ``r`` is the current history of ``user_indices[r]``.
        **side
            Model-specific scoring side information (e.g. ``user_groups`` for Popularity).

        Returns
        -------
        ndarray of float32, shape (n, n_items_)
        """
        self._check_fitted()
        self._check_side(self._score, side)
        users = _as_user_indices(user_indices)
        X = self._check_rows(users, user_items)
        scores = np.asarray(self._score(users, X, **side), dtype=np.float32)
        if scores.shape != (len(users), self.n_items_):  # pragma: no cover - subclass bug
            raise RuntimeError(f"{type(self).__name__}._score returned shape {scores.shape}")
        return scores

    def recommend(
        self,
        user_indices: np.ndarray | int,
        user_items: sp.csr_matrix,
        n: int = 10,
        filter_seen: bool = True,
        candidates: np.ndarray | None = None,
        tie_rng: np.random.Generator | None = None,
        tie_keys: np.ndarray | None = None,
        **side: Any,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` items for a batch of users.

        Parameters
        ----------
        user_indices : int or array of int, shape (n_users,)
            As in :meth:`score`. A scalar gives 1-D results.
        user_items : scipy.sparse matrix, shape (n_users, n_items_)
            One row per user: their history, used for scoring and for ``filter_seen``.
        n : int, default 10
            Number of items per user.
        filter_seen : bool, default True
            Never return an item that is nonzero in the user's row of ``user_items``.
        candidates : array of int, optional
            Item indices to restrict the output to (the same for every user in the batch).
        tie_rng : numpy Generator, optional
            Order equal scores at random, per user, with this generator (evaluation: a model
            that scores items alike then gets what such a list is worth, not the luck of the
            id order). Default: ties go to the lower item index.
        tie_keys : ndarray of float, shape (n_users, n_items_), optional
            Instead of ``tie_rng``: equal scores by the lower key (one random key per user
            and item, drawn once and given to every model, orders equal scores the same way
            in every model's list).
        **side
            Passed to :meth:`score`.

        Returns
        -------
        item_indices : ndarray of int32, shape (n_users, n)
            Best first; ties broken as ``tie_rng`` says; ``-1`` where fewer than ``n``
            items are eligible.
        scores : ndarray of float32, shape (n_users, n)
            The matching scores; ``-inf`` for the ``-1`` padding.
        """
        single = np.ndim(user_indices) == 0
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        users = _as_user_indices(np.atleast_1d(user_indices))
        self._check_fitted()
        X = self._check_rows(users, user_items)
        # Copy: _score may return a shared or read-only array (e.g. popularity rows).
        scores = np.array(self.score(users, X, **side), dtype=np.float32, copy=True)
        scores[np.isnan(scores)] = -np.inf
        if filter_seen and X.nnz:
            rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
            scores[rows, X.indices] = -np.inf
        if candidates is not None:
            allowed = np.zeros(self.n_items_, dtype=bool)
            allowed[self._check_candidates(candidates)] = True
            scores[:, ~allowed] = -np.inf
        ids, vals = top_n(scores, int(n), tie_rng, tie_keys)
        if single:
            return ids[0], vals[0]
        return ids, vals

    @abstractmethod
    def _fit(self, X: sp.csr_matrix, **side: Any) -> None:
        """Set the fitted attributes from a validated float32 CSR matrix."""

    @abstractmethod
    def _score(self, users: np.ndarray, X: sp.csr_matrix, **side: Any) -> np.ndarray:
        """Dense (len(users), n_items_) scores; ``X`` is validated, one row per user."""

    def _validate_params(self) -> None:
        """Raise ``ValueError`` naming the parameter and value for any bad parameter."""
        return None  # models without parameters have nothing to check

    def _forget_fit(self) -> None:
        """Drop everything but the parameters: fitted attributes, parts and caches.

        A refit then starts from what ``__init__`` left, so nothing built from the previous
        data (a cache, a component, an attribute the new fit does not set) can leak into it.
        """
        params = set(self._param_names())
        for name in [name for name in vars(self) if name not in params]:
            delattr(self, name)

    # -- validation helpers ---------------------------------------------------------------------

    @staticmethod
    def _check_side(hook: Any, side: dict[str, Any]) -> None:
        if not side:
            return
        accepted = _side_names(getattr(hook, "__func__", hook))
        unknown = sorted(set(side) - set(accepted))
        if unknown:
            raise TypeError(
                f"{type(hook.__self__).__name__}.{hook.__name__.lstrip('_')}() got unexpected "
                f"side information {unknown}; accepted: {list(accepted)}"
            )

    def _check_rows(self, users: np.ndarray, user_items: Any) -> sp.csr_matrix:
        X = _as_csr(user_items, "user_items")
        if X.shape != (len(users), self.n_items_):
            raise ValueError(
                f"user_items must have one row per user ({len(users)}) and n_items_="
                f"{self.n_items_} columns, got shape {X.shape}"
            )
        return X

    def _check_candidates(self, candidates: Any) -> np.ndarray:
        cand = np.asarray(candidates)
        if cand.ndim != 1 or (cand.size and not np.issubdtype(cand.dtype, np.integer)):
            raise ValueError(f"candidates must be a 1-D array of item indices, got {cand!r}")
        cand = cand.astype(np.int64)
        bad = cand[(cand < 0) | (cand >= self.n_items_)]
        if bad.size:
            raise ValueError(
                f"candidates holds item indices outside [0, {self.n_items_}): {bad[:5].tolist()}"
            )
        return cand

    def _cached(self, key: str, build: Any) -> Any:
        """``build()`` once per fit (``fit`` drops the cache); for derived serving structures."""
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            cache[key] = build()
        return cache[key]

    @staticmethod
    def _known(users: np.ndarray, n_users: int) -> np.ndarray:
        """Mask of users that have a row at fit time."""
        return (users >= 0) & (users < n_users)

    # -- persistence ----------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the params and fitted arrays to ``directory/model.npz`` (no pickles).

        The file is written to a temporary name and renamed, so a reader never sees half of it.

        Returns
        -------
        pathlib.Path
            The path of the file written.
        """
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            _CLASS_KEY: np.array(type(self).__name__),
            _PARAMS_KEY: np.array(self._params_json()),
        }
        for name in self._all_fitted():
            value = getattr(self, name)
            if value is None and name in self._optional_arrays:
                continue
            if sp.issparse(value):
                csr = sp.csr_matrix(value)
                for part in _SPARSE_PARTS:
                    arrays[f"{name}__{part}"] = np.asarray(getattr(csr, part))
            else:
                arr = np.asarray(value)
                if arr.dtype.kind not in "biufcU":
                    raise TypeError(f"fitted attribute {name} has dtype {arr.dtype}: not storable")
                arrays[name] = arr
        path = directory / MODEL_FILE
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".model-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Recommender:
        """Load a model written by :meth:`save`.

        Called on :class:`Recommender` it returns whichever model class the file holds; called on
        a subclass it refuses a file holding another class.
        """
        path = Path(directory) / MODEL_FILE
        with np.load(path, allow_pickle=False) as npz:
            if _CLASS_KEY not in npz or _PARAMS_KEY not in npz:
                raise ValueError(f"{path} is not a saved model (no class or params)")
            name = str(npz[_CLASS_KEY])
            target = Recommender._registry.get(name)
            if target is None or not issubclass(target, cls):
                raise ValueError(f"{path} holds a {name!r} model, not a {cls.__name__}")
            if target is not cls and target.load.__func__ is not Recommender.load.__func__:
                # A model with its own parts (e.g. the hybrid's components) loads itself.
                return target.load(directory)
            model = target(**json.loads(str(npz[_PARAMS_KEY])))
            for attr in target._all_fitted():
                if f"{attr}__shape" in npz:
                    data, indices, indptr, shape = (npz[f"{attr}__{p}"] for p in _SPARSE_PARTS)
                    value: Any = sp.csr_matrix((data, indices, indptr), shape=tuple(shape))
                elif attr in npz:
                    value = npz[attr]
                    if value.ndim == 0:
                        value = value.item()
                elif attr in target._optional_arrays:
                    value = None
                else:
                    raise ValueError(f"{path} lacks the fitted attribute {attr!r}")
                setattr(model, attr, value)
        return model

    def _params_json(self) -> str:
        params = self.get_params()
        for key, value in params.items():
            if isinstance(value, np.generic):
                params[key] = value.item()
            elif not (value is None or isinstance(value, bool | int | float | str)):
                raise TypeError(
                    f"parameter {key}={value!r} cannot be saved: only None, bool, int, float "
                    "and str parameters are stored"
                )
        return json.dumps(params, sort_keys=True)


def float32_keys(x: np.ndarray) -> np.ndarray:
    """Integers (int64, within int32's range) ordered as the float32 values ``x`` compare,
    ``-0.0`` with the key of ``0.0``; a NaN's key means nothing (its row is placed apart).

    The bits of a non-negative float order as the float does, those of a negative one in
    reverse, so a negative float's low 31 bits are flipped. The upper 32 bits are free:
    ``key + (feature << 32)`` keeps a forest's features apart (their thresholds' keys, feature
    after feature, are one ascending array), and ``(key << 32) | column`` orders equal scores
    by column (a hybrid's candidates).
    """
    bits = (x + np.float32(0.0)).view(np.int32)  # adding 0 turns -0.0 into 0.0
    return np.where(bits < 0, bits ^ np.int32(0x7FFFFFFF), bits).astype(np.int64)


def top_n(scores: np.ndarray, n: int, tie_rng: np.random.Generator | None = None,
          tie_keys: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-``n`` of a score matrix, best first, ties to the lower column index (with
    ``tie_rng``: ties in a random order, drawn per row; with ``tie_keys``, shaped as
    ``scores``: ties by the lower key).

    Entries equal to ``-inf`` are never returned: their slots are padded with ``-1`` / ``-inf``,
    as are the slots beyond the number of columns.

    Returns
    -------
    (ndarray of int32, ndarray of float32), both of shape (n_rows, n)
    """
    scores = np.asarray(scores, dtype=np.float32)
    n_rows, n_cols = scores.shape
    k = min(n, n_cols)
    ids = np.full((n_rows, n), -1, dtype=np.int32)
    vals = np.full((n_rows, n), -np.inf, dtype=np.float32)
    if k == 0 or n_rows == 0:
        return ids, vals
    if k < n_cols:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    part_scores = np.take_along_axis(scores, part, axis=1)
    if tie_keys is None and tie_rng is not None:
        tie_keys = tie_rng.random((n_rows, n_cols))
    if tie_keys is None:  # the lower index first
        part_keys = part
    else:
        tie_keys = np.asarray(tie_keys).reshape(n_rows, n_cols)
        part_keys = np.take_along_axis(tie_keys, part, axis=1)
    order = np.lexsort((part_keys, -part_scores))
    top = np.take_along_axis(part, order, axis=1)
    top_scores = np.take_along_axis(part_scores, order, axis=1)
    if k < n_cols:
        # argpartition picks arbitrarily among items tied at the cut; redo those rows with a
        # (score, index) sort so a user's list never depends on the batch around it. Only
        # the items at or above the cut can be in the top k, so only they are sorted (a
        # full sort per row took minutes over 25,000 users of a 40,000-item catalogue).
        cut = top_scores[:, -1]
        tied = (np.count_nonzero(scores >= cut[:, None], axis=1) > k) & np.isfinite(cut)
        for r in np.flatnonzero(tied):
            tie_key = np.arange(n_cols) if tie_keys is None else tie_keys[r]
            above = np.flatnonzero(scores[r] >= cut[r])
            row_order = above[np.lexsort((tie_key[above], -scores[r, above]))[:k]]
            top[r], top_scores[r] = row_order, scores[r, row_order]
    valid = top_scores > -np.inf
    ids[:, :k] = np.where(valid, top, -1)
    vals[:, :k] = np.where(valid, top_scores, -np.inf)
    return ids, vals


@functools.cache
def _side_names(func: Any) -> tuple[str, ...]:
    """Keyword side information a ``_fit`` / ``_score`` hook accepts (cached: scoring one
    resident calls every component's hook, and ``inspect.signature`` costs ~30 us a call)."""
    return tuple(
        p.name
        for p in inspect.signature(func).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY or p.default is not inspect.Parameter.empty
    )


def _as_csr(matrix: Any, name: str) -> sp.csr_matrix:
    """A float32 CSR matrix without explicit zeros, copying only when needed."""
    if type(matrix) is sp.csr_matrix and matrix.dtype == np.float32 and matrix.has_sorted_indices:
        X = matrix  # already in shape: no new object (a serving request passes one row)
    elif sp.issparse(matrix):
        X = sp.csr_matrix(matrix)
    else:
        arr = np.asarray(matrix)
        if arr.ndim != 2 or arr.dtype.kind not in "biuf":
            raise ValueError(
                f"{name} must be a 2-D sparse matrix of weights, got {type(matrix).__name__} "
                f"with shape {arr.shape} and dtype {arr.dtype}"
            )
        X = sp.csr_matrix(arr)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {X.shape}")
    if X.dtype != np.float32:
        X = X.astype(np.float32)
    if X.nnz and not np.isfinite(X.data).all():
        raise ValueError(f"{name} holds non-finite values (NaN or inf)")
    if X.nnz and (X.data == 0).any():
        X = X.copy()
        X.eliminate_zeros()
    if not X.has_sorted_indices:
        X = X.sorted_indices()
    return X


def _as_user_indices(user_indices: Any) -> np.ndarray:
    users = np.asarray(user_indices)
    if users.ndim != 1 or (users.size and not np.issubdtype(users.dtype, np.integer)):
        raise ValueError(
            f"user_indices must be a 1-D array of integers, got {users.dtype} shape {users.shape}"
        )
    return users.astype(np.int64, copy=False)


def check_param(
    name: str,
    value: Any,
    kind: str,
    low: float | None = None,
    low_inclusive: bool = True,
    high: float | None = None,
    high_inclusive: bool = True,
) -> None:
    """Raise ``ValueError`` naming ``name=value`` unless ``value`` is a finite ``kind`` in range.

    ``kind`` is ``"int"`` or ``"float"`` (an int is a valid float). Booleans are never accepted
    as numbers: ``factors=True`` is a mistake, not 1. ``low`` / ``high`` bound the value,
    inclusively unless ``low_inclusive`` / ``high_inclusive`` is False.
    """
    types: tuple[type, ...] = (int, np.integer) if kind == "int" else (int, float, np.number)
    ok = isinstance(value, types) and not isinstance(value, bool | np.bool_)
    ok = ok and bool(np.isfinite(value))
    if ok and low is not None:
        ok = bool(value >= low) if low_inclusive else bool(value > low)
    if ok and high is not None:
        ok = bool(value <= high) if high_inclusive else bool(value < high)
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f"{'>=' if low_inclusive else '>'} {low}")
        if high is not None:
            bounds.append(f"{'<=' if high_inclusive else '<'} {high}")
        bound = f" {' and '.join(bounds)}" if bounds else ""
        raise ValueError(f"{name}={value!r}: must be a finite {kind}{bound}")


def check_bool(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``name=value`` unless ``value`` is a bool."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name}={value!r}: must be a bool")
