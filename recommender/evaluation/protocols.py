"""The evaluation protocols (docs/evaluation.md): temporal, cold-user, cold-item and random.

Each protocol is a function ``DataBundle (+ seed) -> Split``. Conventions shared by all:

- ``Split.train`` keeps every event type (views, cancels, ratings... the models decide what to
  use); its rows keep their index from the input bundle, and users/items frames are shared.
- **Relevance** is :func:`features.frames.positive_mask`: enrolment-like events, or a rating of
  3 or more. ``Split.test_relevant`` holds the relevant test ``(user_id, item_id)`` pairs, one
  row per pair.
- A user's **training items** are the items the user has *any* interaction with (any event type)
  in ``Split.train``. They are removed from ``test_relevant`` here; removing them from the
  candidates is the model's ``filter_seen`` job.
- **Candidates** are the full catalogue, ``Split.catalogue``: every item of the bundle's item
  table or of any of its interactions, including items first seen in the test period and (for
  cold-item) the held-out items. A benchmark may restrict cold-item ranking to
  ``Split.cold_items``; the protocol itself ranks over all items.
- Everything is deterministic for a given ``seed`` and independent of the input row order.

Hyper-parameters are tuned on :func:`validation_split`, the same protocol applied again to the
training part only, so tuning never sees a test row.

A protocol that cannot split the data (one timestamp for a time cut, nothing relevant held out)
raises :class:`SplitError`, whose message names the protocol and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from features.frames import DataBundle, positive_mask
from recommender.evaluation.cuts import (
    TEMPORAL_QUANTILE,
    SplitError,
    cold_user_need,
    temporal_need,
    time_cut,
)

__all__ = [
    "PROTOCOLS",
    "Split",
    "SplitError",
    "cold_item_split",
    "cold_user_split",
    "make_split",
    "random_split",
    "temporal_split",
    "time_cut",
    "validation_split",
]

PROTOCOLS = ("temporal", "cold-user", "cold-item", "random")
# The protocols' fixed parameters; exposed as defaults so a validation cut uses the same ones.
COLD_ITEM_FRACTION = 0.2
RANDOM_TEST_FRACTION = 0.25
_PAIR = ["user_id", "item_id"]
# Why a split has no evaluated user, for its error (the time cuts avoid this when they can).
_NOTHING = {
    "temporal": "no user with training history has a relevant item new to them after the cut",
    "cold-user": "no user whose first interaction is after the cut has a relevant one",
    "cold-item": "none of the held-out items has a relevant interaction; try another --seed "
                 "or --protocol random",
    "random": "no relevant held-out pair belongs to a user with training history (an item "
              "has a pair held out only from its third user on, and a user is evaluated only "
              "with another item in training); try --protocol cold-item",
}


@dataclass
class Split:
    """One train/test split of a protocol.

    Attributes
    ----------
    train : DataBundle
        The training interactions (all event types), with the input's users and items frames.
    test_relevant : DataFrame
        Columns ``user_id, item_id``: the relevant test pairs, deduplicated, sorted, never
        including a pair whose item the user has any training interaction with.
    users : ndarray
        The evaluated user ids (sorted): exactly the users in ``test_relevant``.
    protocol : str
        One of ``PROTOCOLS``.
    cold_items : ndarray or None
        For ``cold-item``: the held-out item ids (absent from ``train``); else None.
    catalogue : ndarray or None
        Every item id (sorted) that the ranking is over.
    cut : pandas.Timestamp or None
        For ``temporal`` and ``cold-user``: the last training timestamp (rows at or before it
        are in ``train``).
    seed : int or None
        The seed of the random protocols.
    """

    train: DataBundle
    test_relevant: pd.DataFrame
    users: np.ndarray
    protocol: str
    cold_items: np.ndarray | None = None
    catalogue: np.ndarray | None = None
    cut: pd.Timestamp | None = None
    seed: int | None = None

    def summary(self) -> dict:
        """Counts for reports: training rows, test pairs, evaluated users, catalogue size."""
        return {
            "protocol": self.protocol,
            "train_rows": int(len(self.train.interactions)),
            "test_pairs": int(len(self.test_relevant)),
            "users": int(len(self.users)),
            "items": None if self.catalogue is None else int(len(self.catalogue)),
            "cold_items": None if self.cold_items is None else int(len(self.cold_items)),
            "cut": None if self.cut is None else str(self.cut),
            "seed": self.seed,
        }


# --------------------------------------------------------------------------- helpers


def _positive(interactions: pd.DataFrame) -> pd.Series:
    # A frame without an event column has no negative events to tell apart: all rows count.
    if "event" not in interactions:
        return pd.Series(True, index=interactions.index)
    return positive_mask(interactions)


class _Coded:
    """Users, items and (user, item) pairs of an interactions frame as integer codes.

    Codes come from a *sorted* factorisation, so code order is id order and everything derived
    from them (pair keys, draws) is independent of the input row order. Working on int64 pair
    keys keeps a split of millions of rows to numpy sorts instead of string merges.
    """

    def __init__(self, interactions: pd.DataFrame) -> None:
        for col in _PAIR:
            if interactions[col].isna().any():
                raise ValueError(
                    f"interactions column {col!r} has {int(interactions[col].isna().sum())} "
                    "missing value(s)"
                )
        self.user, self.user_ids = pd.factorize(interactions["user_id"], sort=True)
        self.item, self.item_ids = pd.factorize(interactions["item_id"], sort=True)
        self.n_items = np.int64(max(len(self.item_ids), 1))
        self.key = self.user.astype(np.int64) * self.n_items + self.item
        self.positive = _positive(interactions).to_numpy(dtype=bool)

    @cached_property
    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Each row's (user, item) pair as a code, and each code's pair key (in order of first
        appearance). A hash factorisation: sorting millions of row keys cost most of a split,
        and what is derived from the codes is counted per code, never ordered by it."""
        codes, keys = pd.factorize(self.key)
        return codes, np.asarray(keys)

    def users_in(self, rows: np.ndarray) -> np.ndarray:
        """Whether each user code has a row in the mask ``rows``, (n_users,) bool."""
        has = np.zeros(len(self.user_ids), dtype=bool)
        has[self.user[rows]] = True
        return has

    def relevant(self, test: np.ndarray, train: np.ndarray, warm_only: bool) -> pd.DataFrame:
        """Relevant test pairs minus the users' training items (any event), sorted by id.

        ``test`` and ``train`` are row masks; ``warm_only`` keeps users with a training row.
        """
        pair_of_row, pair_keys = self.pairs
        tested = np.bincount(pair_of_row[test & self.positive], minlength=pair_keys.size) > 0
        trained = np.bincount(pair_of_row[train], minlength=pair_keys.size) > 0
        keys = np.sort(pair_keys[tested & ~trained])
        users = keys // self.n_items
        if warm_only:
            keep = self.users_in(train)[users]
            keys, users = keys[keep], users[keep]
        return pd.DataFrame(
            {
                "user_id": np.asarray(self.user_ids.take(users)),
                "item_id": np.asarray(self.item_ids.take(keys % self.n_items)),
            }
        )


def _catalogue(bundle: DataBundle, coded: _Coded) -> np.ndarray:
    """Item table ids and interacted item ids (``coded.item_ids``, already distinct), sorted."""
    ids = pd.Index(bundle.items["item_id"].dropna()).append(pd.Index(coded.item_ids))
    return np.sort(np.asarray(ids.unique()))


def _split(bundle: DataBundle, coded: _Coded, in_train: np.ndarray, test: np.ndarray,
           protocol: str, warm_only: bool, **fields) -> Split:
    """The split that trains on rows ``in_train`` and evaluates the relevant ``test`` rows."""
    relevant = coded.relevant(test, in_train, warm_only=warm_only)
    if relevant.empty:
        raise SplitError(f"{protocol}: nothing to evaluate: {_NOTHING[protocol]}")
    return Split(
        train=bundle.with_interactions(bundle.interactions.loc[in_train]),
        test_relevant=relevant,
        # test_relevant is sorted by user id, so the distinct users come out sorted.
        users=np.asarray(pd.unique(relevant["user_id"])),
        protocol=protocol,
        catalogue=_catalogue(bundle, coded),
        **fields,
    )


def _check_fraction(name: str, value: float) -> float:
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return float(value)


# --------------------------------------------------------------------------- protocols


def temporal_split(bundle: DataBundle, quantile: float = TEMPORAL_QUANTILE,
                   warm_only: bool = True) -> Split:
    """Global time cut; warm users are evaluated on what they did after it.

    Parameters
    ----------
    bundle : DataBundle
        All interactions.
    quantile : float, default 0.8
        The cut is the ``quantile`` of all timestamps (``method="lower"``: an actual timestamp);
        interactions at the cut go to train. Where that cut leaves no (warm) user a relevant
        item after it, the nearest distinct timestamp that does is taken (:func:`time_cut`).
    warm_only : bool, default True
        The protocol evaluates warm users only. ``False`` keeps the users who first appear
        after the cut too: the validation cut a served model learns from, since it must rank
        newcomers as well as regulars.

    Raises
    ------
    SplitError
        When no cut between distinct timestamps has a (warm) user with a relevant new item
        after it, e.g. every row has the same timestamp.

    Returns
    -------
    Split
        ``train`` = rows at or before the cut. Evaluated (warm) users have training history and
        at least one relevant test item they have no training interaction with; those items are
        ``test_relevant``. Items first seen after the cut stay in ``catalogue``.
    """
    inter = bundle.interactions
    coded = _Coded(inter)
    cut, in_train = time_cut(inter, quantile, protocol="temporal",
                             need=temporal_need(coded, warm_only))
    return _split(bundle, coded, in_train, ~in_train, "temporal", warm_only, cut=cut)


def cold_user_split(bundle: DataBundle, quantile: float = TEMPORAL_QUANTILE) -> Split:
    """Users who first appear after the temporal cut, ranked without any history.

    Parameters
    ----------
    bundle : DataBundle
        All interactions.
    quantile : float, default 0.8
        The same cut as :func:`temporal_split`, moved (:func:`time_cut`) where it leaves no user
        who first appears after it with a relevant interaction: with coarse timestamps the
        newcomers may all arrive well before the quantile.

    Raises
    ------
    SplitError
        When no cut between distinct timestamps has such a user after it.

    Returns
    -------
    Split
        ``train`` = every row at or before the cut (so the cold users have no training row).
        Evaluated users are those whose first interaction is after the cut and who have at least
        one relevant interaction; ``test_relevant`` is all their relevant pairs.
    """
    inter = bundle.interactions
    coded = _Coded(inter)
    cut, in_train = time_cut(inter, quantile, protocol="cold-user", need=cold_user_need(coded))
    # Every user with a row at or before the cut has a training row, so "first interaction
    # after the cut" is exactly "absent from train".
    cold = ~coded.users_in(in_train)[coded.user]
    return _split(bundle, coded, in_train, cold & ~in_train, "cold-user", False, cut=cut)


def cold_item_split(
    bundle: DataBundle, seed: int | None = 0, fraction: float = COLD_ITEM_FRACTION
) -> Split:
    """A seeded share of the items is removed from training entirely.

    Parameters
    ----------
    bundle : DataBundle
        All interactions.
    seed : int, default 0
        Seed of the item draw.
    fraction : float, default 0.2
        Share of the items *with interactions* held out: ``round(fraction * n)``, at least 1.

    Returns
    -------
    Split
        ``train`` = every row of a kept item (users keep their other items). ``test_relevant`` =
        the relevant pairs with held-out items; evaluated users = the users of those pairs (also
        those with no training rows left). ``cold_items`` = the held-out ids. Candidates are the
        whole catalogue (held-out items included); a benchmark may restrict to ``cold_items``.
    """
    fraction = _check_fraction("fraction", fraction)
    coded = _Coded(bundle.interactions)
    n_items = len(coded.item_ids)
    if n_items < 2:
        raise SplitError(f"cold-item: needs at least 2 items with interactions, got {n_items}")
    n_cold = min(max(1, int(np.rint(fraction * n_items))), n_items - 1)
    rng = np.random.default_rng(seed)
    cold_codes = np.sort(rng.choice(n_items, size=n_cold, replace=False))
    is_cold = np.isin(coded.item, cold_codes)
    return _split(bundle, coded, ~is_cold, is_cold, "cold-item", False, seed=seed,
                  cold_items=np.asarray(coded.item_ids.take(cold_codes)))


def random_split(
    bundle: DataBundle, seed: int | None = 0, test_fraction: float = RANDOM_TEST_FRACTION
) -> Split:
    """Per item, a seeded random 75 % of its users' interactions train and the rest test.

    The unit is the unique ``(user, item)`` pair, so all events of one pair land on the same
    side. Of an item's ``n`` pairs, ``round(n * (1 - test_fraction))`` (Python's rounding, as
    Microsoft Recommenders' stratified split) go to train: an item with 4 pairs has 3 in train,
    an item with a single pair stays in train.

    Parameters
    ----------
    bundle : DataBundle
        All interactions.
    seed : int, default 0
        Seed of the shuffle.
    test_fraction : float, default 0.25
        Share of each item's pairs held out.

    Returns
    -------
    Split
        ``test_relevant`` = the relevant held-out pairs of users who have training history
        (users with no training row cannot be ranked by a collaborative model; Microsoft
        Recommenders' metrics likewise only score users present in the predictions).
    """
    test_fraction = _check_fraction("test_fraction", test_fraction)
    coded = _Coded(bundle.interactions)
    # The pairs in key order, (user id, item id), so the draw depends on the seed only: only
    # the distinct keys are sorted, the rows keep their hash codes (coded.pairs).
    codes, keys = coded.pairs
    order = np.argsort(keys, kind="stable")
    pairs = keys[order]
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    row_pair = position[codes]
    pair_item = pairs % coded.n_items
    draw = np.random.default_rng(seed).random(pairs.size)
    order = np.lexsort((draw, pair_item))  # by item, then by the random draw
    size = np.bincount(pair_item, minlength=int(coded.n_items))
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    rank = np.empty(pairs.size, dtype=np.int64)
    rank[order] = np.arange(pairs.size) - start[pair_item[order]]
    # np.rint rounds half to even, like Python's round in Microsoft Recommenders.
    pair_train = rank < np.rint(size * (1.0 - test_fraction))[pair_item]
    in_train = pair_train[row_pair]
    return _split(bundle, coded, in_train, ~in_train, "random", True, seed=seed)


def _canonical(protocol: str) -> str:
    name = str(protocol).strip().lower().replace("_", "-")
    if name not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return name


def make_split(bundle: DataBundle, protocol: str, seed: int | None = 0) -> Split:
    """The split of ``protocol`` (``temporal``, ``cold-user``, ``cold-item`` or ``random``).

    ``cold_user``/``cold_item`` spellings are accepted; the time-based protocols ignore ``seed``.
    """
    name = _canonical(protocol)
    if name == "temporal":
        return temporal_split(bundle)
    if name == "cold-user":
        return cold_user_split(bundle)
    if name == "cold-item":
        return cold_item_split(bundle, seed=seed)
    return random_split(bundle, seed=seed)


def validation_split(
    train_bundle: DataBundle | Split, protocol: str, seed: int | None = 0,
    warm_only: bool = True,
) -> Split:
    """The same protocol applied again to a training part, for tuning.

    Parameters
    ----------
    train_bundle : DataBundle or Split
        The training part of a test split (a Split is replaced by its ``train``). Only its rows
        are read, so no test row can reach the validation split.
    protocol : str
        One of ``PROTOCOLS``.
    seed : int, default 0
        Seed of the random protocols.
    warm_only : bool, default True
        For ``temporal`` only (see :func:`temporal_split`): False keeps the users who first
        appear after the cut among the validation users, as a served model's cut does.

    Returns
    -------
    Split
        Whose ``train`` fits the candidate models and whose ``test_relevant`` scores them.
    """
    if isinstance(train_bundle, Split):
        train_bundle = train_bundle.train
    if _canonical(protocol) == "temporal":
        return temporal_split(train_bundle, warm_only=warm_only)
    return make_split(train_bundle, protocol, seed=seed)
