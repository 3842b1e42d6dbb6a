"""Serving's fast path ranks every resident exactly as the plain computation does.

Ranking one resident is tuned for per-call overheads (every component's ranks and top
candidates in one numpy pass, the trees as lookup tables on float32 keys, EASE without column
slicing, profile lifts gathered at once, the components' ranks of the listed courses read in
one call). Here every resident of a small district, and residents the model never saw, are
ranked twice in the same run: through the served code, and with those pieces swapped for their
plain definitions (ranks counted by comparison, one component's candidates at a time,
sklearn's own trees, the sliced EASE product, profile lifts added one by one, each component's
ranks read column by column). Items, reasons and signal rows must be identical and scores
equal up to the order of the trees' sum; a faster path that changed any list fails here.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from models.ease import EASE
from models.hybrid import SIGNALS, ranker, signals
from models.hybrid.candidates import COMPONENTS
from models.hybrid.reranker import ReRanker
from recommender.data.datasets import load_district
from recommender.demo.generator import generate_district
from recommender.serving.engine import Engine, UserContext
from recommender.serving.holder import Catalogue, Snapshot
from recommender.serving.rules import diversify
from recommender.training.recipe import train_artifact

# Small parameters, ALS on (every component has a column to get right), fewer candidates than
# courses (the top-k choice matters).
PARAMS = {"als_factors": 8, "als_iterations": 3, "max_iter": 20, "knn_neighbours": 20,
          "n_candidates": 20, "max_train_users": 1000}


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    folder = tmp_path_factory.mktemp("district")
    generate_district(folder, residents=600, courses=60, seed=5, as_of=dt.date(2025, 6, 1))
    root = tmp_path_factory.mktemp("artifacts")
    with threadpool_limits(1):
        train_artifact(load_district(folder), root, seed=0, params=PARAMS)
    return Engine.load(root)


def _plain_ranks(masked, rows, values, ordered=None):
    """How many items of the row each value's component scores higher, by comparison (the
    sorted scores, if given, are not read)."""
    return (masked[:, rows, :] > values[:, :, None]).sum(axis=2).astype(np.float32)


def _plain_candidate_mask(scores, blocked, interests, item_category, n_candidates,
                          tie_order=None):
    """Each component's top ``n_candidates`` allowed items (equal scores: the lower column
    first), one component at a time."""
    assert tie_order is None  # serving orders equal scores by column, never at random
    n, n_items = blocked.shape
    k = min(n_candidates, n_items)
    candidate = np.zeros((n, n_items), dtype=bool)
    masked = []
    for name in COMPONENTS:
        s = np.where(blocked, -np.inf, scores[name])
        masked.append(s)
        np.put_along_axis(candidate, np.argsort(-s, axis=1, kind="stable")[:, :k], True, axis=1)
    known = item_category >= 0
    wanted = np.zeros((n, n_items), dtype=bool)
    wanted[:, known] = interests[:, np.minimum(item_category[known], interests.shape[1] - 1)]
    return (candidate | wanted) & ~blocked, np.stack(masked), None


def _plain_profile_scores(attributes, lift, offsets, n_categories):
    """Each user's category lifts summed over their known attribute values, one by one."""
    out = np.zeros((attributes.shape[0], max(n_categories, 1)), dtype=np.float32)
    for a in range(min(attributes.shape[1], offsets.size - 1)):
        for user, code in enumerate(attributes[:, a]):
            if 0 <= code < offsets[a + 1] - offsets[a]:
                out[user] += lift[offsets[a] + code]
    return out


def _plain_component_ranks(rows, active):
    rows = np.asarray(rows, dtype=np.float64)
    return {name: np.where((rows[..., SIGNALS.index(name)] > 0) & (name in active),
                           np.rint(np.expm1(rows[..., SIGNALS.index(f"{name}_rank")])), np.inf)
            for name in COMPONENTS}


def _lists(engine: Engine, contexts, allowed) -> list:
    """Each context's top-10 as (item, score, reasons), its pool's signal rows, and its
    top-10 diversified as the service diversifies it (several passes when the pool runs out)."""
    n_items = engine.model.n_items_
    snap = Snapshot(engine, Catalogue.from_items(engine.items, engine.community_names),
                    np.zeros(n_items, dtype=np.int64), {})
    out = []
    for ctx, mask in zip(contexts, allowed):
        pool = engine.rank_pool(ctx, 10, allowed=mask)
        recs = pool.take(range(len(pool.items)))
        mixed = diversify(snap, ctx, np.ones(n_items, bool) if mask is None else mask, 10,
                          capped=True, explain=True)
        out.append(([(r.item_id, r.score, r.reasons) for r in recs], pool.signals,
                    [(r.item_id, r.score, r.reasons) for r in mixed]))
    return out


def test_every_resident_is_ranked_as_the_plain_computation_ranks_them(engine, monkeypatch):
    model = engine.model
    ease = model._components["ease"]
    assert ease.active_.size < model.n_items_, "the district should have courses nobody took"
    assert model.user_attributes_.shape[1] > 0, "the residents should have profile attributes"
    rng = np.random.default_rng(0)
    contexts = [engine.context_for(u) for u in engine.users.index]
    # Residents the model never saw: a declared interest, each band, with and without a
    # community.
    for band in ("preschool", "school_age", "working_age", "elderly", None):
        for community in (None, str(engine.users["community_id"].iloc[0])):
            contexts.append(UserContext(None, band, community,
                                        interests=(str(engine.vocab.categories[0]),)))
    # Half of them with a random third of the courses not on offer (blocked items).
    allowed = [None if k % 2 else rng.random(model.n_items_) > 0.33
               for k in range(len(contexts))]
    fast = _lists(engine, contexts, allowed)

    monkeypatch.setattr(signals, "_ranks", _plain_ranks)
    monkeypatch.setattr(ranker, "candidate_mask", _plain_candidate_mask)
    monkeypatch.setattr(ranker, "profile_scores", _plain_profile_scores)
    monkeypatch.setattr(ReRanker, "predict", lambda self, rows: np.mean(
        [trees.predict_proba(rows)[:, 1] for trees in self.members], axis=0))
    monkeypatch.setattr(EASE, "_full_weights", lambda self: None)
    monkeypatch.setattr(type(model), "component_ranks",
                        lambda self, rows: _plain_component_ranks(rows, self.components))
    with threadpool_limits(1):
        plain = _lists(engine, contexts, allowed)

    reasons_seen = set()
    for (fast_recs, fast_rows, fast_mixed), (plain_recs, plain_rows, plain_mixed) in zip(
            fast, plain, strict=True):
        for got, want in ((fast_recs, plain_recs), (fast_mixed, plain_mixed)):
            assert [(i, r) for i, _, r in got] == [(i, r) for i, _, r in want]
            np.testing.assert_allclose([s for _, s, _ in got], [s for _, s, _ in want],
                                       rtol=1e-12, atol=0)
        np.testing.assert_array_equal(fast_rows, plain_rows)
        reasons_seen |= {reason.code for _, _, rs in fast_recs for reason in rs}
    # The comparison covered lists of every kind of reason the rules give from signals.
    assert {"similar_to_taken", "popular_in_band", "made_for_band", "residents_like_you",
            "interest_match", "new_course"} <= reasons_seen


def test_category_codes_match_where_the_categories_compare_equal():
    """The diversity cap compares category codes instead of the category objects."""
    categories = ["arts", "sports", None, "arts", float("nan"), None, "sports", float("nan")]
    catalogue = Catalogue(ids=pd.Index([f"C{k}" for k in range(len(categories))]),
                          category=np.array(categories, dtype=object),
                          band_bits=np.zeros(8, np.uint8), family=np.zeros(8, bool),
                          open=np.ones(8, bool), end_date=np.full(8, "NaT", "datetime64[D]"),
                          capacity=np.zeros(8, np.int64), records=[{}] * 8)
    code = catalogue.category_code
    for k, category in enumerate(catalogue.category):
        if code[k] >= 0:  # the courses the cap leaves out with this one
            np.testing.assert_array_equal(code == code[k], catalogue.category == category)
        else:  # a NaN category equals none, so the cap leaves nothing out
            assert not (catalogue.category == category).any()


def test_a_short_list_is_filled_from_the_pass_that_ranked_it(engine, monkeypatch):
    """Courses of a capped category that a pass already ranked fill the list in that pass's
    order, with no further pass."""
    catalogue = Catalogue.from_items(engine.items, engine.community_names)
    snap = Snapshot(engine, catalogue, np.zeros(len(catalogue.ids), dtype=np.int64), {})
    categories = pd.Series(catalogue.category)
    common = categories.value_counts().index[0]
    mask = (categories == common).to_numpy().copy()
    mask[np.flatnonzero(~mask)[0]] = True  # one course of another category
    ctx = engine.context_for(engine.users.index[0])
    order = [str(i) for i in engine.rank_pool(ctx, int(mask.sum()), allowed=mask).item_ids]
    assert sum(catalogue.category[catalogue.position[c]] == common for c in order) >= 10
    passes = []
    real = Engine.rank_pools
    monkeypatch.setattr(Engine, "rank_pools",
                        lambda self, asks: passes.append(len(asks)) or real(self, asks))
    mixed = [r.item_id for r in diversify(snap, ctx, mask, 10, capped=True, explain=True)]
    assert passes == [1]
    head, other = [], [c for c in order if catalogue.category[catalogue.position[c]] != common]
    for course in order:  # the cap: five of the common category, and the other course
        if course in other or sum(c not in other for c in head) < 5:
            head.append(course)
    fill = [c for c in order if c not in head][:10 - len(head)]
    assert mixed == head + fill
