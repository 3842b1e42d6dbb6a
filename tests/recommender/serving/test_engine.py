"""The engine on a real trained artifact: ranking, reasons, cold start, filters, similar courses,
new events, checksums, determinism and the manifest.

One small district is generated per module and trained twice: in the served configuration (the
model's defaults, as ``recommender train`` trains it: ALS off), which most tests use, and with
small parameters and ALS on, for the reasons only ALS gives. Tests that change an engine's
state load their own copy.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from features.bands import BAND_NAMES
from features.codes import band_codes
from models.hybrid import SIGNALS, HybridRanker
from recommender.data.datasets import load_district
from recommender.demo.generator import generate_district
from recommender.serving.engine import Engine, UserContext
from recommender.serving.explaining import REASON_TOP
from recommender.serving.wording import REASONS, Reason, text
from recommender.training.artifacts import ArtifactError, sha256_file
from recommender.training.recipe import train_artifact

AS_OF = dt.date(2025, 6, 1)
SEED = 0
# The real training code with small hyper-parameters and ALS on.
SMALL = {"als_factors": 8, "als_iterations": 3, "max_iter": 20, "knn_neighbours": 20,
         "n_candidates": 20, "max_train_users": 1000}
ALS_REASON = "residents_like_you"
# Reasons that only a resident's history can support.
HISTORY_REASONS = ("similar_to_taken", ALS_REASON, "taken_together", "like_your_courses")
# Reasons that speak of the resident's band.
BAND_REASONS = ("popular_in_band", "popular_in_community", "made_for_band",
                "category_popular_in_band")


def _codes(rec) -> list[str]:
    return [r.code for r in rec.reasons]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One OpenMP/BLAS thread: on a shared 2-core machine spinning threads make fits crawl."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, one_thread):
    folder = tmp_path_factory.mktemp("district")
    generate_district(folder, residents=800, courses=60, seed=11, as_of=AS_OF)
    return load_district(folder)


@pytest.fixture(scope="module")
def artifacts(bundle, tmp_path_factory) -> Path:
    """The served configuration: no params, as ``recommender train`` calls it."""
    root = tmp_path_factory.mktemp("artifacts")
    train_artifact(bundle, root, seed=SEED)
    return root


@pytest.fixture(scope="module")
def engine(artifacts) -> Engine:
    return Engine.load(artifacts)


@pytest.fixture(scope="module")
def als_engine(bundle, tmp_path_factory) -> Engine:
    root = tmp_path_factory.mktemp("als-artifacts")
    train_artifact(bundle, root, seed=SEED, params=SMALL)
    return Engine.load(root)


@pytest.fixture(scope="module")
def active(engine) -> list[str]:
    """Residents with a history, a spread of them."""
    users = [u for u in engine.users.index if engine.seen(u)]
    assert len(users) > 50
    return users[:: max(len(users) // 8, 1)][:8]


def _community(engine, band: str) -> str:
    users = engine.users
    return str(users.loc[users["age_band"] == band, "community_id"].mode().iloc[0])


# -- loading ------------------------------------------------------------------------------------


def test_load_points_at_the_trained_version(engine, artifacts):
    current = (artifacts / "current").resolve()
    assert engine.path == current
    assert engine.version == current.name == engine.manifest["version"]
    assert engine.model.n_items_ == 60 == len(engine.items)
    assert len(engine.users) == 800


def test_band_codes_cover_every_band():
    np.testing.assert_array_equal(band_codes(list(BAND_NAMES)), np.arange(len(BAND_NAMES)))
    np.testing.assert_array_equal(band_codes([None, "adult", ""]), [-1, -1, -1])


# -- ranking ------------------------------------------------------------------------------------


def test_known_resident_gets_n_distinct_unseen_courses_mostly_explained(engine, active):
    for user in active:
        ctx = engine.context_for(user)
        assert ctx is not None and ctx.known and ctx.user_id == user
        assert ctx.age_band in BAND_NAMES
        recs = engine.recommend(ctx, n=10)
        ids = [r.item_id for r in recs]
        assert len(ids) == 10 and len(set(ids)) == 10
        assert not set(ids) & engine.seen(user)
        assert set(ids) <= set(engine.items.index)
        scores = [r.score for r in recs]
        assert scores == sorted(scores, reverse=True) and np.isfinite(scores).all()
        for rec in recs:
            assert all(isinstance(r, Reason) and r.code in REASONS for r in rec.reasons)
            assert all(text(r, lang).strip() for r in rec.reasons for lang in ("zh", "en"))
            assert not rec.cold_start
        # A course no signal speaks for gets no reason (see the tests at the end); that is
        # the exception, not the rule.
        assert sum(bool(rec.reasons) for rec in recs) >= 8, recs


def test_reasons_name_a_course_the_resident_took(engine, active):
    """``similar_to_taken``: a course in the resident's history, by id and title."""
    found = 0
    for user in active:
        seen = engine.seen(user)
        for rec in engine.recommend(engine.context_for(user), n=10):
            for reason in rec.reasons:
                if reason.code == "similar_to_taken":
                    course = reason.params["course_id"]
                    assert course in seen
                    assert reason.params["title"] == engine.items.loc[course, "title"]
                    found += 1
    assert found > 0


def test_unknown_resident_is_ranked_cold_from_band_and_community(engine):
    community = _community(engine, "elderly")
    ctx = UserContext(None, "elderly", community)
    recs = engine.recommend(ctx, n=10)
    assert len(recs) == 10 and len({r.item_id for r in recs}) == 10
    assert all(r.cold_start for r in recs)
    assert sum(bool(r.reasons) for r in recs) >= 8, recs
    assert any(reason.params.get("band") == "elderly" for r in recs for reason in r.reasons)
    assert engine.context_for("no-such-resident") is None
    assert engine.seen("no-such-resident") == set()


def test_cold_lists_follow_the_age_band(als_engine):
    """The head of a new elderly resident's list holds more courses made for elderly residents
    than a new preschooler's does, and the other way round.

    On the small parameters: on this 60-course district the defaults' 50 candidates per
    component leave almost no course out, and both heads fill with new courses."""
    engine = als_engine
    heads = {}
    for band in ("elderly", "preschool"):
        ctx = UserContext(None, band, _community(engine, band))
        heads[band] = [r.item_id for r in engine.recommend(ctx, n=5, explain=False)]
    targets = engine.items["target_bands"].fillna("").str.split("|")

    def made_for(band, items):
        return sum(band in targets[i] for i in items)

    for band, other in (("elderly", "preschool"), ("preschool", "elderly")):
        assert made_for(band, heads[band]) > made_for(band, heads[other]), heads


def test_allowed_mask_is_respected(engine, active):
    rng = np.random.default_rng(0)
    allowed = rng.random(engine.model.n_items_) < 0.4
    allowed_ids = set(engine.mapping.item_ids(np.flatnonzero(allowed)).tolist())
    contexts = [engine.context_for(u) for u in active[:4]]
    contexts.append(UserContext(None, "working_age", _community(engine, "working_age")))
    for ctx in contexts:
        recs = engine.recommend(ctx, n=10, allowed=allowed)
        assert recs and {r.item_id for r in recs} <= allowed_ids
    nothing = np.zeros(engine.model.n_items_, dtype=bool)
    assert engine.recommend(contexts[0], n=10, allowed=nothing) == []


def test_similar_excludes_the_course_itself(engine):
    for item in list(engine.items.index[:3]):
        similar = engine.similar(item, n=5)
        ids = [i for i, _ in similar]
        assert len(ids) == 5 and item not in ids and len(set(ids)) == 5
        scores = [s for _, s in similar]
        assert scores == sorted(scores, reverse=True)
    with pytest.raises(KeyError):
        engine.similar("no-such-course")


def test_enrolment_removes_the_course_from_the_next_list(artifacts, active):
    engine = Engine.load(artifacts)  # its own copy: add_events changes state
    user = active[0]
    ctx = engine.context_for(user)
    first = engine.recommend(ctx, n=10)
    course = first[0].item_id
    assert course not in engine.seen(user)
    engine.add_events(pd.DataFrame({"resident_id": [user], "course_id": [course],
                                    "event": ["enroll"], "value": [np.nan]}))
    assert course in engine.seen(user)
    after = [r.item_id for r in engine.recommend(ctx, n=10)]
    assert course not in after and len(after) == 10
    # unknown ids in an event batch are ignored, not an error
    engine.add_events(pd.DataFrame({"resident_id": ["ghost"], "course_id": [course],
                                    "event": ["enroll"], "value": [np.nan]}))


# -- artifact integrity and determinism ---------------------------------------------------------


@pytest.mark.parametrize("name", ["tables.npz", "model/ranker.joblib", "model/model.npz"])
def test_tampered_file_is_refused(artifacts, tmp_path, name):
    copy = tmp_path / "artifacts"
    shutil.copytree(artifacts, copy, symlinks=True)
    target = (copy / "current").resolve() / name
    with open(target, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ArtifactError, match=re.escape(name)):
        Engine.load(copy)


def test_same_data_and_seed_give_same_lists_and_scores(bundle, engine, active, tmp_path):
    again = Engine.load(Path(train_artifact(bundle, tmp_path / "again", seed=SEED)).parent)
    assert again.path != engine.path
    assert again.manifest["data"]["sha256"] == engine.manifest["data"]["sha256"]
    contexts = [engine.context_for(u) for u in active[:4]]
    contexts.append(UserContext(None, "school_age", _community(engine, "school_age")))
    for ctx in contexts:
        a, b = engine.recommend(ctx, n=10), again.recommend(ctx, n=10)
        assert [r.item_id for r in a] == [r.item_id for r in b]
        np.testing.assert_allclose([r.score for r in a], [r.score for r in b], rtol=1e-6)
        assert [r.reasons for r in a] == [r.reasons for r in b]


def test_manifest_has_the_required_fields(engine, bundle):
    manifest, path = engine.manifest, engine.path
    assert manifest["version"] == path.name
    created = dt.datetime.fromisoformat(manifest["created"])
    assert created.tzinfo is not None
    assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(hours=1)
    data = manifest["data"]
    assert re.fullmatch(r"[0-9a-f]{64}", data["sha256"])
    assert data["users"] == 800 and data["items"] == 60
    assert data["interactions"] == len(bundle.interactions)
    params = manifest["params"]
    assert params["seed"] == SEED
    assert params == {**HybridRanker().get_params(), "random_state": SEED, "seed": SEED}
    assert params == {**engine.model.get_params(), "seed": SEED}
    for lib in ("python", "numpy", "scipy", "pandas", "scikit-learn", "implicit", "joblib"):
        assert manifest["libraries"][lib] not in ("", None, "missing")
    files = manifest["files"]
    on_disk = {str(p.relative_to(path)) for p in path.rglob("*")
               if p.is_file() and p.name != "manifest.json"}
    assert set(files) == on_disk
    assert {"tables.npz", "model/model.npz", "model/ranker.joblib"} <= on_disk
    for name, digest in files.items():
        assert sha256_file(path / name) == digest


def test_manifest_records_validation_metrics(engine):
    """The manifest holds the validation metrics (list_versions shows them)."""
    metrics = engine.manifest.get("validation_metrics")
    assert metrics, f"manifest has no validation_metrics; keys: {sorted(engine.manifest)}"
    assert all(0.0 <= float(v) <= 1.0 for k, v in metrics.items() if "@" in k)


def test_data_hash_changes_with_the_data(bundle):
    from recommender.training.recipe import _bundle_hash

    fewer = bundle.with_interactions(bundle.interactions.iloc[1:])
    assert _bundle_hash(fewer) != _bundle_hash(bundle)
    assert _bundle_hash(bundle.with_interactions(bundle.interactions.copy())) == _bundle_hash(
        bundle)


def test_popularity_reasons_name_the_community_not_its_id(als_engine, bundle):
    """On the small parameters, whose cold lists hold popular courses (see
    ``test_cold_lists_follow_the_age_band``)."""
    engine = als_engine
    names = bundle.meta["community_names"]
    community = _community(engine, "elderly")
    recs = engine.recommend(UserContext(None, "elderly", community), n=10)
    local = [r for rec in recs for r in rec.reasons if r.code == "popular_in_community"]
    assert local, "expected a popular_in_community reason for a new elderly resident"
    for reason in local:
        assert reason.params == {"band": "elderly", "community_id": community,
                                 "community_name": names[community]}
        assert text(reason, "zh") == f"深受{names[community]}老年人欢迎"
        assert text(reason, "en") == f"popular with elderly residents in {names[community]}"


def test_declared_interest_lifts_that_category(als_engine):
    """A declared interest (any case) doubles the scores of that category's courses (the
    default ``interest_boost``), leaves the others alone, and says why."""
    engine = als_engine
    community = _community(engine, "elderly")
    n = len(engine.items)
    plain = engine.recommend(UserContext(None, "elderly", community), n=n)
    keen = engine.recommend(
        UserContext(None, "elderly", community, interests=("Intangible_Heritage",)), n=n)
    category = engine.items["category"]
    before = {r.item_id: r.score for r in plain}
    lifted = [r for r in keen if r.item_id in before]
    matched = [r for r in lifted if category[r.item_id] == "intangible_heritage"]
    assert matched and len(lifted) > len(matched)
    for r in lifted:
        factor = 2.0 if category[r.item_id] == "intangible_heritage" else 1.0
        assert r.score == pytest.approx(before[r.item_id] * factor, rel=1e-5)
    assert all(Reason("interest_match", {"category": "intangible_heritage"}) in r.reasons
               for r in matched)
    share = [sum(category[r.item_id] == "intangible_heritage" for r in recs[:10])
             for recs in (plain, keen)]
    assert share[1] >= share[0]


def test_profile_attributes_rank_and_explain_a_new_resident(tmp_path):
    # A generic dataset where who takes a category depends on gender only; a resident the
    # model never saw, known only by their gender, gets that category first, with the reason.
    from recommender.data.datasets import load_benchmark
    from recommender.serving.engine import Engine
    from recommender.training.recipe import train_artifact

    rng = np.random.default_rng(3)
    data = tmp_path / "data"
    data.mkdir()
    users = pd.DataFrame({"user_id": [f"U{i}" for i in range(300)],
                          "gender": np.where(np.arange(300) % 2, "F", "M")})
    items = pd.DataFrame({"item_id": [f"I{j}" for j in range(12)],
                          "title": [f"course {j}" for j in range(12)],
                          "category": ["crafts"] * 6 + ["sport"] * 6})
    rows = []
    for i, gender in enumerate(users["gender"]):
        own = range(0, 6) if gender == "F" else range(6, 12)
        # a third of the residents join late: the validation cut has newcomers to learn from
        months = [9] * 3 if i % 3 == 0 else rng.integers(1, 10, 3)
        for j, month in zip(rng.choice(list(own), size=3, replace=False), months):
            rows.append((f"U{i}", f"I{j}", f"2026-0{month}-1{rng.integers(0, 9)}"))
    users.to_csv(data / "users.csv", index=False)
    items.to_csv(data / "items.csv", index=False)
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(
        data / "interactions.csv", index=False)
    train_artifact(load_benchmark(data), tmp_path / "art", seed=0,
                   params={"max_iter": 20, "knn_neighbours": 5, "n_candidates": 6})
    engine = Engine.load(tmp_path / "art")
    for gender, category in (("F", "crafts"), ("M", "sport")):
        ctx = UserContext(user_id=None, age_band=None, attributes=(("gender", gender),))
        recs = engine.recommend(ctx, n=6)
        first = items.set_index("item_id").loc[[r.item_id for r in recs[:3]], "category"]
        assert (first == category).all()
        assert Reason("profile_favourite", {"category": category}) in recs[0].reasons


# -- reasons come only from signals that exist ----------------------------------------------------


def _ranked_by(engine, signals: np.ndarray, component: str) -> bool:
    """Whether ``component`` scores the course above zero and ranks it among its best
    REASON_TOP and among its candidates (ranks are stored as log1p)."""
    top = min(REASON_TOP, engine.model.n_candidates)
    score = signals[SIGNALS.index(component)]
    rank = np.rint(np.expm1(signals[SIGNALS.index(f"{component}_rank")]))
    return bool(score > 0 and rank < top)


def _contexts(engine) -> list[UserContext]:
    """A spread of known residents (all have a history here) and a new resident per band."""
    known = [engine.context_for(u) for u in engine.users.index[::20]]
    return known + [UserContext(None, band, _community(engine, band)) for band in BAND_NAMES]


def _supported(engine, reason: Reason, signals: np.ndarray) -> bool:
    """Whether the signal ``reason`` is drawn from is there for the course."""
    def has(name: str) -> bool:
        return bool(signals[SIGNALS.index(name)] > 0)

    def ranked(*components: str) -> bool:
        return any(c in engine.model.components and _ranked_by(engine, signals, c)
                   for c in components)

    checks = {
        "interest_match": lambda: has("interest"),
        "similar_to_taken": lambda: ranked("knn", "content"),
        ALS_REASON: lambda: ranked("als"),
        "taken_together": lambda: ranked("ease", "knn"),
        "like_your_courses": lambda: ranked("content"),
        "popular_in_district": lambda: ranked("pop"),
        "popular_lately": lambda: ranked("pop_recent"),
        "made_for_band": lambda: has("eligible"),
        "in_your_community": lambda: has("same_community"),
        "new_course": lambda: signals[SIGNALS.index("item_log_count")] == 0,
        "category_popular_in_band": lambda: ranked("cat_band"),
        "popular_in_community": lambda: ranked("pop_local"),
        "popular_in_band": lambda: ranked("pop_band"),
        "profile_favourite": lambda: has("profile_category"),
    }
    return checks[reason.code]()


def test_served_configuration_has_als_off(engine, als_engine):
    assert HybridRanker().als_factors == 0
    assert engine.model.als_factors == 0 and "als" not in engine.model.components
    assert "als" in als_engine.model.components


def test_no_list_gets_the_als_reason_when_als_is_off(engine):
    recs = [rec for ctx in _contexts(engine) for rec in engine.recommend(ctx, n=10)]
    assert len(recs) >= 400
    assert not [rec for rec in recs if ALS_REASON in _codes(rec)]
    assert sum(bool(rec.reasons) for rec in recs) >= 0.9 * len(recs)


@pytest.mark.parametrize("which", ["served", "als"])
def test_every_reason_comes_from_a_signal_that_is_there(engine, als_engine, which):
    engine = engine if which == "served" else als_engine
    als_reasons = 0
    for ctx in _contexts(engine):
        pool = engine.rank_pool(ctx, 10)
        history = len(pool.history) > 0
        for rec, signals in zip(pool.take(range(len(pool.items))), pool.signals):
            for reason in rec.reasons:
                assert _supported(engine, reason, signals), (ctx.user_id, reason, rec)
            als = ALS_REASON in _codes(rec)
            assert als == (which == "als" and history and _ranked_by(engine, signals, "als"))
            als_reasons += als
            if not history:
                assert not set(_codes(rec)) & set(HISTORY_REASONS), rec
    assert (als_reasons > 0) == (which == "als")


def test_because_you_took_names_the_course_the_recommendation_is_like(engine):
    """Residents whose whole history is one course X: the only course a ``similar_to_taken``
    reason can name is X, and the recommended courses most like X carry it."""
    singles = {u: next(iter(seen)) for u in engine.users.index
               if len(seen := engine.seen(u)) == 1}
    assert len(singles) >= 10
    found = 0
    for user, course in list(singles.items())[:15]:
        title = engine.items.loc[course, "title"]
        most_like = {i for i, _ in engine.similar(course, n=5)}
        for rec in engine.recommend(engine.context_for(user), n=10):
            took = [r for r in rec.reasons if r.code == "similar_to_taken"]
            assert took in ([], [Reason("similar_to_taken", {"course_id": course,
                                                             "title": title})]), (user, rec)
            if rec.item_id in most_like:
                assert took, (user, course, rec)
            found += bool(took)
    assert found >= 15


def test_new_residents_get_no_history_reason(engine, als_engine):
    for eng in (engine, als_engine):
        for band in (*BAND_NAMES, "adult", None):  # "adult" is no band the model knows
            ctx = UserContext(None, band, _community(eng, "elderly"))
            recs = eng.recommend(ctx, n=10)
            assert len(recs) == 10
            if band in BAND_NAMES:
                assert sum(bool(rec.reasons) for rec in recs) >= 5, recs
            else:
                # Without a band only the community, a course's newness and the district's
                # popularity can speak: each course among the district's favourites does.
                pool = eng.rank_pool(ctx, 10)
                popular = eng.model.component_ranks(pool.signals)["pop"] < REASON_TOP
                for rec, top in zip(recs, popular):
                    assert rec.reasons or not top, rec
                assert any(rec.reasons for rec in recs), recs
            for rec in recs:
                assert not set(_codes(rec)) & set(HISTORY_REASONS), rec
                if band not in BAND_NAMES:  # nothing is said about a band
                    assert not set(_codes(rec)) & set(BAND_REASONS), rec


def test_history_courses_the_caller_still_offers_are_ranked(engine, active):
    """The caller's allowed mask decides what is offered: a course in the history (a view)
    that the mask allows is ranked, one it leaves out is not; the resident stays warm."""
    user = active[0]
    ctx = engine.context_for(user)
    history = engine.seen(user)
    n = len(engine.items)
    everything = np.ones(n, bool)
    in_history = np.zeros(n, bool)
    in_history[engine.mapping.item_index(sorted(history))] = True
    offered = {r.item_id for r in engine.recommend(ctx, n=n, allowed=in_history,
                                                   explain=False)}
    assert offered == history
    assert not any(r.cold_start for r in engine.recommend(ctx, n=3, allowed=in_history))
    # Ranking a part of the courses with the whole offer as ``eligible``: the history course
    # left out of ``allowed`` is not ranked, the others still are.
    course = sorted(history)[0]
    part = in_history.copy()
    part[engine.mapping.item_index([course])[0]] = False
    ranked = {r.item_id for r in engine.recommend(ctx, n=n, allowed=part, explain=False,
                                                  eligible=everything)}
    assert ranked == history - {course}
    # Without a mask the history is never re-offered (the engine's own filter).
    assert not {r.item_id for r in engine.recommend(ctx, n=n, explain=False)} & history
