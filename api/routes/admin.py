"""Model information and the atomic reload."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminRole, MetricsDep, ReaderRole, ServiceDep
from api.schemas import ModelInfo, ReloadResult, error_responses
from recommender.serving import RegistryError, ServiceError, last_move

router = APIRouter(prefix="/v1", tags=["admin"])


class ReloadRefused(ServiceError):
    status, code = 409, "reload_refused"


@router.get("/model", response_model=ModelInfo, responses=error_responses(401, 503))
async def model_info(_: ReaderRole, service: ServiceDep):
    """The model being served: version, when it was trained, its validation metrics."""
    return service.model_info()


@router.post("/admin/reload", response_model=ReloadResult,
             responses=error_responses(401, 403, 409))
def reload_model(_: AdminRole, service: ServiceDep, metrics: MetricsDep):
    """Load ``ARTIFACTS_DIR/current`` and swap it in atomically. Requests in flight finish on the
    old model; a corrupt or mismatched artifact is refused (409) and the old model keeps
    serving. The answer names the version served before and now, and the registry's move
    (promotion, training or rollback) that made it current."""
    holder = service.holder
    previous = holder.version
    try:
        snap = holder.reload()
    except Exception as exc:  # ArtifactError, or whatever a broken artifact raises on load
        metrics.count_reload("refused")
        raise ReloadRefused("artifact", f"{type(exc).__name__}: {exc}") from exc
    metrics.count_reload("ok")
    metrics.set_model(snap.engine.version)
    version = snap.engine.version
    return {"previous_version": previous, "version": version, "changed": previous != version,
            "moved": _move_to(holder.artifacts_dir, version)}


def _move_to(artifacts_dir, version: str) -> dict | None:
    """The registry's latest move of current if it was to ``version``; an unreadable history
    does not fail a reload that succeeded (its error is in the answer of `models history`)."""
    try:
        move = last_move(artifacts_dir)
    except RegistryError:
        return None
    if move is None or move.get("to") != version:
        return None
    return {"at": move.get("at"), "by": move.get("by"), "action": move.get("action"),
            "from_version": move.get("from"), "to_version": move["to"]}
