"""A low-rank autoencoder of the user's row, trained with a ranking loss (a softmax over items).

EASE (models/ease.py) is the full-rank linear autoencoder fitted by least squares: one weight
per pair of items, which on a catalogue of a few thousand items and a few hundred users is far
more than the data holds, and a squared loss that weighs every item alike rather than the
top of the list. This model keeps EASE's shape (scores are a function of the user's row, so a
new user or a refreshed history needs no refit) and changes both:

- rank: an item ``j`` in the row adds its embedding ``p_j`` to the user's vector
  ``h = sum_j x_j p_j / (sum_j x_j)^0.5``, and item ``i`` scores ``h . q_i + b_i``;
- loss: the multinomial log-likelihood of held-out items, ``-log softmax(scores)[i]``, which
  rewards putting the right items above all others, as LightFM's WARP and sampled-softmax
  factor models do. Each epoch holds out a random ``holdout`` share of every row's entries
  and learns to rank them from the rest: the task the model is used for, and no way to
  score an item by its own presence in the row.

With ``fit(X, item_features=F)`` an item's output embedding and bias are its own plus those
of its features (category, target bands, tags: F's rows scaled to sum to 1), as LightFM
builds an item from its features: a course nobody has taken yet is scored by its features
alone, and ranked for a user by how their row relates to courses like it.

Trained by mini-batch Adam in numpy, over the full softmax of at most ``max_items`` items (the
most used). Scores are softmax probabilities, in [0, 1]: over every item with features, over
the items seen at fit time without (the others score 0, as in EASE). An empty row scores the
item biases: popularity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from models.base import Recommender, check_param, most_used_items
from models.weighting import ValueWeighting

# Adam's moment decay rates and its denominator's floor (Kingma & Ba's defaults).
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8
# The row's vector is its weighted sum of item embeddings over sqrt of the row's weight:
# between a sum (long histories dominate) and a mean (one item says as much as a hundred).
_ROW_NORM_POWER = 0.5


class FactorAutoencoder(ValueWeighting, Recommender):
    """Low-rank row autoencoder with a softmax loss on held-out entries.

    Parameters
    ----------
    factors : int, default 64
        Size of the item embeddings (input and output).
    epochs : int, default 60
        Passes over the users.
    learning_rate : float, default 0.003
        Adam's step size.
    l2 : float, default 1e-4
        Weight decay added to every gradient (embeddings; the biases too).
    holdout : float, default 0.2
        Share of each row's entries held out as targets in an epoch (drawn afresh each epoch).
    batch_size : int, default 256
        Users per gradient step.
    epoch_users : int or None, default None
        At most this many users per epoch, drawn afresh each epoch (None: all of them): the
        softmax costs users x items x factors per pass, so a large district trains on a
        sample of its residents per pass, as the hybrid's trees do.
    max_items : int, default 10000
        The softmax runs over at most this many items, those with the most users.
    weighting : {"raw", "binary", "log"}, default "raw"
        How the matrix's values are read (:mod:`models.weighting`).
    random_state : int or None
        Seed of the initial embeddings, the order of users and the held-out entries.

    Attributes
    ----------
    encoder_ : ndarray of float32, shape (n_active, factors)
        Input embeddings of the active items.
    decoder_ : ndarray of float32, shape (n_items, factors)
        Every item's output embedding (its own and its features').
    bias_ : ndarray of float32, shape (n_items,)
    active_ : ndarray of int64
        The items the softmax was trained over: an item in a row adds to the user's vector
        only if it is one of them.
    scored_ : ndarray of bool, shape (n_items,)
        The items scored: every item with features, the active ones without.
    value_scale_ : float or None
        What ``weighting="log"`` reads as 1.
    """

    _fitted_arrays = ("encoder_", "decoder_", "bias_", "active_", "scored_", "value_scale_")
    _optional_arrays = ("value_scale_",)

    def __init__(self, factors: int = 64, epochs: int = 60, learning_rate: float = 0.003,
                 l2: float = 1e-4, holdout: float = 0.2, batch_size: int = 256,
                 epoch_users: int | None = None, max_items: int = 10_000,
                 weighting: str = "raw", random_state: int | None = None):
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.l2 = l2
        self.holdout = holdout
        self.batch_size = batch_size
        self.epoch_users = epoch_users
        self.max_items = max_items
        self.weighting = weighting
        self.random_state = random_state

    def _validate_params(self) -> None:
        check_param("factors", self.factors, "int", low=1)
        check_param("epochs", self.epochs, "int", low=0)
        check_param("learning_rate", self.learning_rate, "float", low=0.0, low_inclusive=False)
        check_param("l2", self.l2, "float", low=0.0)
        check_param("holdout", self.holdout, "float", low=0.0, low_inclusive=False, high=1.0,
                    high_inclusive=False)
        check_param("batch_size", self.batch_size, "int", low=1)
        if self.epoch_users is not None:
            check_param("epoch_users", self.epoch_users, "int", low=1)
        check_param("max_items", self.max_items, "int", low=1)
        if self.random_state is not None:
            check_param("random_state", self.random_state, "int", low=0)
        self._check_weighting()

    def _fit(self, X: sp.csr_matrix, item_features: Any = None) -> None:
        X = self._weigh_fit(X)
        active = self.active_ = most_used_items(X, int(self.max_items))
        features = _feature_rows(item_features, X.shape[1])
        rng = np.random.default_rng(self.random_state)
        rows = sp.csr_matrix(X[:, active], dtype=np.float32)
        rows = rows[np.flatnonzero(rows.getnnz(axis=1))]  # an empty row teaches nothing
        params = _initial_params(rows, int(self.factors), rng,
                                 0 if features is None else features.shape[1])
        # One BLAS thread: a step's products are small (a batch x the catalogue), a second
        # thread saves nothing alone and, beside another busy process, spins against it (a
        # MOOC fit took 158 s instead of 25 s beside a second benchmark).
        with threadpool_limits(1, "blas"):
            _train(params, rows, self, rng, None if features is None else features[active])
        self.encoder_ = params[0]
        self.decoder_, self.bias_ = _item_outputs(params, active, features, X.shape[1])
        self.scored_ = np.full(X.shape[1], features is not None)
        self.scored_[active] = True

    def _score(self, users: np.ndarray, X: sp.csr_matrix) -> np.ndarray:
        scores = np.zeros((X.shape[0], self.n_items_), dtype=np.float32)
        if not self.scored_.any():
            return scores
        rows = sp.csr_matrix(self._weigh(X)[:, self.active_], dtype=np.float32)
        scored = np.flatnonzero(self.scored_)
        logits = _logits(rows, self.encoder_, self.decoder_[scored], self.bias_[scored])
        scores[:, scored] = _softmax(logits)
        return scores


def _feature_rows(item_features: Any, n_items: int) -> sp.csr_matrix | None:
    """The items' feature rows scaled to sum to 1 (an item with many tags is not louder than
    one with a category alone), or None."""
    if item_features is None:
        return None
    features = sp.csr_matrix(item_features, dtype=np.float32)
    if features.shape[0] != n_items:
        raise ValueError(f"item_features has {features.shape[0]} rows, the matrix {n_items} "
                         "items")
    if features.shape[1] == 0:
        return None
    return normalize(abs(features), norm="l1", axis=1).astype(np.float32).tocsr()


def _item_outputs(params: list[np.ndarray], active: np.ndarray,
                  features: sp.csr_matrix | None, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Every item's output embedding and bias: an active item's own plus its features', an
    item never seen at fit time its features' alone (zeros without features)."""
    decoder = np.zeros((n_items, params[1].shape[1]), dtype=np.float32)
    bias = np.zeros(n_items, dtype=np.float32)
    if features is not None:
        decoder += np.asarray(features @ params[3], dtype=np.float32)
        bias += np.asarray(features @ params[4], dtype=np.float32).ravel()
    decoder[active] += params[1]
    bias[active] += params[2]
    return decoder, bias


def _initial_params(rows: sp.csr_matrix, factors: int, rng: np.random.Generator,
                    n_features: int = 0) -> list[np.ndarray]:
    """Small random embeddings, and biases at the items' centred log counts (where the
    softmax starts: popularity); with features, their output embeddings and biases at 0."""
    n_items = rows.shape[1]
    encoder = (rng.standard_normal((n_items, factors)) * 0.01).astype(np.float32)
    decoder = (rng.standard_normal((n_items, factors)) * 0.01).astype(np.float32)
    bias = np.log1p(rows.getnnz(axis=0)).astype(np.float32)
    params = [encoder, decoder, bias - bias.mean()]
    if n_features:
        params += [np.zeros((n_features, factors), dtype=np.float32),
                   np.zeros(n_features, dtype=np.float32)]
    return params


def _row_norms(rows: sp.csr_matrix) -> np.ndarray:
    weight = np.asarray(rows.sum(axis=1), dtype=np.float32).ravel()
    return np.where(weight > 0, weight, 1.0) ** -_ROW_NORM_POWER


def _logits(rows: sp.csr_matrix, encoder: np.ndarray, decoder: np.ndarray,
            bias: np.ndarray) -> np.ndarray:
    hidden = np.asarray(rows @ encoder) * _row_norms(rows)[:, None]
    return hidden @ decoder.T + bias


def _softmax(logits: np.ndarray) -> np.ndarray:
    out = np.exp(logits - logits.max(axis=1, keepdims=True))
    out /= out.sum(axis=1, keepdims=True)
    return out.astype(np.float32, copy=False)


def _train(params: list[np.ndarray], rows: sp.csr_matrix, model: FactorAutoencoder,
           rng: np.random.Generator, features: sp.csr_matrix | None = None) -> None:
    """Mini-batch Adam on the held-out entries' softmax loss, in place on ``params``;
    ``features``: the active items' feature rows, whose embeddings add to the items' own."""
    moments = [np.zeros_like(p) for p in params]
    squares = [np.zeros_like(p) for p in params]
    batch, lr, l2 = int(model.batch_size), float(model.learning_rate), float(model.l2)
    step = 0
    n_users = rows.shape[0] if model.epoch_users is None else min(rows.shape[0],
                                                                   int(model.epoch_users))
    for _ in range(int(model.epochs)):
        shuffled = rows[rng.permutation(rows.shape[0])[:n_users]]
        held = rng.random(shuffled.nnz) < float(model.holdout)
        inputs = sp.csr_matrix((np.where(held, 0.0, shuffled.data).astype(np.float32),
                                shuffled.indices, shuffled.indptr), shape=shuffled.shape)
        targets = sp.csr_matrix((np.where(held, shuffled.data, 0.0).astype(np.float32),
                                 shuffled.indices, shuffled.indptr), shape=shuffled.shape)
        for start in range(0, n_users, batch):
            grads = _gradients(params, inputs[start:start + batch],
                               targets[start:start + batch], l2, features)
            if grads is None:
                continue
            step += 1
            _adam_step(params, grads, moments, squares, lr, step)


def _gradients(params: list[np.ndarray], inputs: sp.csr_matrix, targets: sp.csr_matrix,
               l2: float, features: sp.csr_matrix | None = None) -> list[np.ndarray] | None:
    """Gradients of the batch's mean held-out log-loss (per unit of target weight), or None
    when the batch holds nothing out."""
    encoder, decoder, bias = params[:3]
    if features is not None:  # an item's output is its own embedding plus its features'
        decoder = decoder + np.asarray(features @ params[3])
        bias = bias + np.asarray(features @ params[4]).ravel()
    target_weight = np.asarray(targets.sum(axis=1), dtype=np.float32).ravel()
    total = float(target_weight.sum())
    if total <= 0:
        return None
    norms = _row_norms(inputs)
    hidden = np.asarray(inputs @ encoder) * norms[:, None]
    probs = _softmax(hidden @ decoder.T + bias)
    # d(-sum_i t_i log p_i)/d logits = p * sum(t) - t, per unit of the batch's target weight.
    grad_logits = probs * target_weight[:, None]
    grad_logits -= targets.toarray()
    grad_logits /= total
    grad_hidden = (grad_logits @ decoder) * norms[:, None]
    grad_decoder = grad_logits.T @ hidden
    grad_bias = grad_logits.sum(axis=0)
    grads = [np.asarray(inputs.T @ grad_hidden) + l2 * encoder,
             grad_decoder + l2 * params[1], grad_bias + l2 * params[2]]
    if features is not None:
        grads += [np.asarray(features.T @ grad_decoder) + l2 * params[3],
                  np.asarray(features.T @ grad_bias).ravel() + l2 * params[4]]
    return grads


def _adam_step(params: list[np.ndarray], grads: list[np.ndarray], moments: list[np.ndarray],
               squares: list[np.ndarray], lr: float, step: int) -> None:
    first_fix = 1.0 - _BETA1 ** step
    second_fix = 1.0 - _BETA2 ** step
    for param, grad, m, v in zip(params, grads, moments, squares):
        m *= _BETA1
        m += (1.0 - _BETA1) * grad
        v *= _BETA2
        v += (1.0 - _BETA2) * grad * grad
        param -= (lr / first_fix) * m / (np.sqrt(v / second_fix) + _EPS)
