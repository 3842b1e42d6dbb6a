"""Online A/B tests between two model versions: start, status, stop and the report (admin keys).

Starting records the experiment in the store (every worker follows within about a second, and a
restart keeps it) and loads both models in this worker before answering
(:mod:`recommender.serving.experiments`). The handlers are plain ``def``: each one reads or
writes the store, and starting loads models.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import Scope, ServiceDep, require_scope
from api.schemas import (
    MAX_NUMBER_ID,
    Experiment,
    ExperimentIn,
    ExperimentReport,
    ExperimentStatus,
    error_responses,
)

router = APIRouter(prefix="/v1/admin", tags=["admin"])
AdminScope = Annotated[Scope, Depends(require_scope("admin"))]


def _out(row: dict | None) -> dict | None:
    """A stored experiment as the API shows it (times as ISO text)."""
    if row is None:
        return None
    return {**row, **{k: row[k].isoformat() if row[k] is not None else None
                      for k in ("started_at", "stopped_at")}}


@router.post("/experiment", response_model=Experiment, status_code=201,
             responses=error_responses(
                 400, 401, 403, 404, 409, 413, 422, 503,
                 meanings={404: "`version_a` or `version_b` is not a version in the artifacts "
                                "folder.",
                           409: "Another experiment is running: stop it first.",
                           422: "A body field is invalid, or the two versions are the same."}))
def start_experiment(body: ExperimentIn, scope: AdminScope, service: ServiceDep):
    """Start serving ``version_b`` to ``share`` of residents (by a hash of the experiment and
    resident ids) and ``version_a`` to the rest. 409 while another experiment runs; 404 for a
    version without an artifact; 422 for the same version twice."""
    row = service.experiments.start(body.version_a, body.version_b, body.share,
                                    started_by=scope.who, note=body.note)
    return _out(row)


@router.get("/experiment", response_model=ExperimentStatus,
            responses=error_responses(401, 403, 503))
def experiment_status(_: AdminScope, service: ServiceDep):
    """The running experiment (null when none runs), whether this worker serves it, and the
    newest experiment."""
    status = service.experiments.status()
    return {**status, "running": _out(status["running"]), "latest": _out(status["latest"])}


@router.delete("/experiment", response_model=Experiment,
               responses=error_responses(401, 403, 404, 503,
                                         meanings={404: "No experiment is running."}))
def stop_experiment(scope: AdminScope, service: ServiceDep):
    """Stop the running experiment (404 when none runs); everyone gets the current model."""
    return _out(service.experiments.stop(stopped_by=scope.who))


@router.get("/experiment/report", response_model=ExperimentReport,
            responses=error_responses(
                401, 403, 404, 422, 503,
                meanings={404: "No experiment with `experiment_id` (without it: none yet)."}))
def experiment_report(
    _: AdminScope, service: ServiceDep,
    days: Annotated[float, Query(gt=0, le=365, description="Conversion window, days.")] = 7.0,
    experiment_id: Annotated[int | None, Query(ge=1, le=MAX_NUMBER_ID,
                                               description="Default: the newest.")] = None,
):
    """Per variant: impressions, the share followed by an enrolment in a listed course within
    ``days`` (Wilson 95 % interval), B - A (Newcombe interval), the sample-ratio check and the
    per-band breakdown."""
    return service.experiments.report(days=days, experiment_id=experiment_id)
