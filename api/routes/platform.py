"""What the district platform calls: recommendations for residents, profiles and households,
similar courses, and participation events.

Ranking is pure CPU on the in-memory model, so the ranking handlers are ``async def`` and rank
on the event loop, one request at a time. A plain ``def`` handler would rank in up to 40 pool
threads at once, which fight over the GIL and lost ~25 % of the throughput (docs/decisions.md).
Their store reads (:func:`store_read`) run on the loop too when the store's reads are local
file reads (SQLite), and in the thread pool when they may wait on a server (PostgreSQL). The
events handler writes to the store and stays plain ``def``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import MetricsDep, PlatformRole, ServiceDep
from api.language import Language
from api.schemas import (
    ID_PATTERN,
    Category,
    EventBatch,
    EventReport,
    HouseholdRecommendations,
    Profile,
    ProfileRecommendations,
    ResidentIn,
    ResidentOut,
    ResidentRecommendations,
    SimilarCourses,
    error_responses,
)
from recommender.serving import ServiceError
from recommender.serving.service import ListRequest, RecommendationService

router = APIRouter(prefix="/v1", tags=["platform"])
T = TypeVar("T")


async def store_read(service: RecommendationService, read: Callable[..., T], *args) -> T:
    """``read(*args)`` for a ranking handler: inline when the store's reads are local
    (``quick_reads``), else in the thread pool, where a wait on the database server leaves
    the loop free to rank.

    An SQLite read of a resident's facts costs ~0.05 ms of CPU with its covering index; the
    thread-pool hop around it cost more than the read, and its GIL hand-offs slowed the
    ranking on the loop (0.45 ms of CPU per list at 32 clients, docs/decisions.md).
    """
    if service.store.quick_reads:
        return read(*args)
    return await run_in_threadpool(read, *args)


@contextmanager
def located(where: str) -> Iterator[None]:
    """Name service errors the way request validation does (``body.age_band``)."""
    try:
        yield
    except ServiceError as exc:
        if exc.status != 503:
            exc.field = f"{where}.{exc.field}"
        raise


K = Annotated[int, Query(ge=1, le=100, description="How many courses (1..100).")]
Explain = Annotated[bool, Query(description="Include the reasons of each course.")]


@router.get("/residents/{resident_id}/recommendations", response_model=ResidentRecommendations,
            responses=error_responses(401, 403, 422, 503))
async def resident_recommendations(
    resident_id: Annotated[str, Path(pattern=ID_PATTERN, max_length=64)],
    _: PlatformRole, service: ServiceDep, lang: Language, k: K = 10,
    category: Annotated[Category | None, Query(description="Only this category.")] = None,
    explain: Explain = True,
):
    """A resident's courses, ranked, after the business rules. A resident the model has never
    seen gets a cold-start list (``cold_start: true``), not an error."""
    facts = await store_read(service, service.resident_facts, resident_id)
    # ranked with the lists asked meanwhile (recommender.serving.batching)
    return await service.lists.submit(ListRequest(resident_id, k, category, explain, facts,
                                                  lang))


@router.post("/recommendations", response_model=ProfileRecommendations,
             responses=error_responses(400, 401, 403, 413, 422, 503))
async def profile_recommendations(profile: Profile, _: PlatformRole, service: ServiceDep,
                                  lang: Language):
    """Courses for someone the platform has not registered: birth year or band, community,
    interests."""
    with located("body"):
        return service.for_profile(
            birth_year=profile.birth_year, age_band=profile.age_band,
            community_id=profile.community_id, interests=profile.interests, k=profile.k,
            category=profile.category, explain=profile.explain, lang=lang,
        )


@router.get("/households/{household_id}/recommendations",
            response_model=HouseholdRecommendations,
            responses=error_responses(401, 403, 404, 422, 503))
async def household_recommendations(
    household_id: Annotated[str, Path(pattern=ID_PATTERN, max_length=64)],
    _: PlatformRole, service: ServiceDep, lang: Language, k: K = 10,
):
    """Courses two or more members can attend together, with whom each course is for."""
    taken = await store_read(service, service.household_taken, household_id)
    with located("path"):
        return service.for_household(household_id, k=k, taken=taken, lang=lang)


@router.get("/courses/{course_id}/similar", response_model=SimilarCourses,
            responses=error_responses(401, 403, 404, 422, 503))
async def similar_courses(
    course_id: Annotated[str, Path(pattern=ID_PATTERN, max_length=64)],
    _: PlatformRole, service: ServiceDep, lang: Language, k: K = 10,
    available_only: Annotated[bool, Query(description="Only courses open to enrol in.")] = True,
):
    """Courses most like this one."""
    with located("path"):
        return service.similar(course_id, k=k, available_only=available_only, lang=lang)


@router.post("/events", response_model=EventReport,
             responses=error_responses(400, 401, 403, 413, 422, 503))
def post_events(batch: EventBatch, _: PlatformRole, service: ServiceDep, metrics: MetricsDep):
    """Up to 1,000 participation events. Each is checked on its own (a bad field rejects only
    its event, named by index, event id, field and reason); accepted ones are stored durably
    before this answers, and re-sent event ids count as duplicates. 422 only for a body that is
    not a list of 1 to 1,000 JSON objects."""
    report = service.ingest([e.model_dump() for e in batch.events])
    metrics.count_events(report.accepted, report.duplicates, report.rejected)
    return report


@router.put("/residents/{resident_id}", response_model=ResidentOut, status_code=200,
            responses={**error_responses(400, 401, 403, 413, 422, 503),
                       201: {"model": ResidentOut,
                             "description": "The resident was new and is registered"}})
def put_resident(resident_id: Annotated[str, Path(pattern=ID_PATTERN, max_length=64)],
                 profile: ResidentIn, _: PlatformRole, service: ServiceDep, response: Response):
    """Register a resident (201) or update a registered one (200): birth year or band,
    community, optional gender, household and interests, checked like the importer checks a
    `residents` row (a 422 names the field, e.g. `body.interests[1]`). The body replaces the
    stored profile. From then on their events are accepted and a list for them starts from this
    profile (band, community, household, interests) until a model trained with them takes over;
    declared interests keep lifting their categories after that. Sending the same profile again
    changes nothing."""
    with located("body"):
        row, created = service.register_resident(resident_id, profile.model_dump())
    response.status_code = 201 if created else 200
    return {**row, "registered_at": row["registered_at"].isoformat()}
