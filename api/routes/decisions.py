"""Coordinators' decisions: approve, reject or pin a course for a cohort, list them, undo one.

Coordinator and admin keys only; a key limited to communities (``coordinator@C01+C02:KEY``)
acts only on those, and never district-wide (``all``). A decision changes the cohort's next
recommendations at once, without retraining (:mod:`recommender.serving.decisions`). The
handlers are plain ``def``: each one reads or writes the store.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import CoordinatorScope, ServiceDep, check_community
from api.schemas import (
    ID_PATTERN,
    MAX_NUMBER_ID,
    CohortDecisions,
    Decision,
    DecisionIn,
    error_responses,
)

router = APIRouter(prefix="/v1", tags=["coordinator"])
CommunityId = Annotated[str, Path(pattern=ID_PATTERN, max_length=64,
                                  description="A community id, or `all` (district-wide).")]
BandPath = Annotated[str, Path(max_length=32, description="An age band, or `all`.")]


def _out(row: dict) -> dict:
    """A stored decision as the API shows it (times as ISO text)."""
    return {**row, **{k: row[k].isoformat() if row[k] is not None else None
                      for k in ("decided_at", "undone_at")}}


@router.post("/cohorts/{community_id}/{band}/decisions", response_model=Decision,
             status_code=201, responses=error_responses(400, 401, 403, 404, 413, 422, 503))
def add_decision(community_id: CommunityId, band: BandPath, decision: DecisionIn,
                 scope: CoordinatorScope, service: ServiceDep):
    """Approve, reject or pin a course for a cohort; the answer carries the decision's id."""
    check_community(scope, community_id)
    row = service.decisions.add(community_id=community_id, band=band,
                                course_id=decision.course_id, action=decision.action,
                                note=decision.note, decided_by=scope.who)
    return _out(row)


@router.get("/cohorts/{community_id}/{band}/decisions", response_model=CohortDecisions,
            responses=error_responses(401, 403, 404, 422, 503))
def list_decisions(
    community_id: CommunityId, band: BandPath, scope: CoordinatorScope, service: ServiceDep,
    include_undone: Annotated[bool, Query(description="Undone decisions too.")] = False,
):
    """A cohort's own decisions, oldest first (``all`` lists the district-wide ones)."""
    check_community(scope, community_id)
    rows = service.decisions.listed(community_id, band, include_undone=include_undone)
    return {"community_id": community_id, "band": band, "decisions": [_out(r) for r in rows]}


@router.delete("/decisions/{decision_id}", response_model=Decision,
               responses=error_responses(401, 403, 404, 422, 503))
def undo_decision(decision_id: Annotated[int, Path(ge=1, le=MAX_NUMBER_ID)],
                  scope: CoordinatorScope,
                  service: ServiceDep):
    """Undo a decision: it stops steering at once and stays in the history (undoing twice
    changes nothing)."""
    check_community(scope, service.decisions.get(decision_id)["community_id"])
    return _out(service.decisions.undo(decision_id, by=scope.who))
