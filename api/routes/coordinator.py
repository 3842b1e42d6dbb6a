"""What district coordinators read: cohorts, course suggestions with expected demand against
seats (JSON and CSV), unmet demand and learning-behaviour analytics.

The cohort figures are computed once per model version and horizon (every resident scored in
batches, under a minute at district scale) and cached by
:class:`~recommender.serving.cohorts.CohortService`; the first request after a reload pays for
it, so the handlers are plain ``def`` and run in the thread pool, off the event loop that ranks
for the platform. Decisions (approve, reject, pin) are recorded through
:mod:`api.routes.decisions`; a cohort's suggestions carry the decision in force for each course
and leave rejected courses out. A coordinator key limited to some communities sees only their
cohorts and gets 403 on any other (``check_community``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from api.deps import CoordinatorScope, ServiceDep, check_community
from api.schemas import (
    ID_PATTERN,
    CohortAnalytics,
    Cohorts,
    CohortSuggestions,
    error_responses,
)
from recommender.serving import ServiceError
from recommender.serving.cohorts import CohortService, suggestions_csv

router = APIRouter(prefix="/v1/cohorts", tags=["coordinators"])
SUGGESTION_ERRORS = error_responses(401, 403, 404, 409, 422, 503)
async def get_cohorts(request: Request) -> CohortService:
    """The app's cohort service, made on first use over the platform service's store and
    model holder (so its cache lives as long as the app)."""
    state = request.app.state
    cohorts = getattr(state, "cohorts", None)
    if cohorts is None:
        service = state.service
        cohorts = state.cohorts = CohortService(service.store, service.holder, service.today)
    return cohorts


@contextmanager
def located(where: str) -> Iterator[None]:
    """Name an unknown community or band by where it was given (``path.band``)."""
    try:
        yield
    except ServiceError as exc:
        if exc.status == 404:
            exc.field = f"{where}.{exc.field}"
        raise


CohortsDep = Annotated[CohortService, Depends(get_cohorts)]
Community = Annotated[str, Path(pattern=ID_PATTERN, max_length=64,
                                description="A community id, or `all`.")]
Band = Annotated[str, Path(max_length=32, description="An age band, or `all`.")]
Horizon = Annotated[int, Query(ge=1, le=365, description="Days ahead the demand is for.")]
Limit = Annotated[int, Query(ge=1, le=200, description="How many courses (1..200).")]


@router.get("", response_model=Cohorts, responses=error_responses(401, 403, 409, 503))
def list_cohorts(scope: CoordinatorScope, cohorts: CohortsDep):
    """The cohorts the key may see (community x band, each community as a whole, each band
    district-wide for an unscoped key) with their size; fewer than 10 residents shows as
    ``{"suppressed": true}``."""
    result = cohorts.cohorts()
    if scope.communities is not None:
        result["cohorts"] = [c for c in result["cohorts"]
                             if c["community_id"] in scope.communities]
    return result


@router.get("/{community_id}/{band}/suggestions", response_model=CohortSuggestions,
            responses=SUGGESTION_ERRORS)
def cohort_suggestions(community_id: Community, band: Band, scope: CoordinatorScope,
                       cohorts: CohortsDep, service: ServiceDep, horizon_days: Horizon = 30,
                       limit: Limit = 20):
    """Open courses by the cohort's expected demand within ``horizon_days``, with seats
    left, fill forecast, flags and the decision in force (rejected courses left out), and what
    the cohort is drawn to that nothing near covers."""
    check_community(scope, community_id)
    with located("path"):
        return cohorts.suggestions(community_id, band, horizon_days=horizon_days, limit=limit,
                                   decisions=service.decisions.for_cohort(community_id, band))


@router.get("/{community_id}/{band}/suggestions.csv", responses={
    **SUGGESTION_ERRORS, 200: {"content": {"text/csv": {}}, "description": "UTF-8 CSV with a BOM"}})
def cohort_suggestions_csv(community_id: Community, band: Band, scope: CoordinatorScope,
                           cohorts: CohortsDep, service: ServiceDep, horizon_days: Horizon = 30,
                           limit: Limit = 20):
    """The suggestions as CSV (UTF-8 with a byte-order mark, so Excel shows Chinese titles)."""
    check_community(scope, community_id)
    with located("path"):
        result = cohorts.suggestions(community_id, band, horizon_days=horizon_days, limit=limit,
                                     decisions=service.decisions.for_cohort(community_id, band))
    name = f"suggestions_{community_id}_{band}_{horizon_days}d.csv"
    return Response(suggestions_csv(result), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/{community_id}/{band}/analytics", response_model=CohortAnalytics,
            responses=error_responses(401, 403, 404, 422, 503))
def cohort_analytics(community_id: Community, band: Band, scope: CoordinatorScope,
                     cohorts: CohortsDep):
    """Participation over time and by category, completion / no-show / cancellation rates,
    share active, households learning across generations and courses' fill rates."""
    check_community(scope, community_id)
    with located("path"):
        return cohorts.analytics(community_id, band)
