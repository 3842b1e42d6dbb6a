"""Model information and the atomic reload."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminRole, MetricsDep, ReaderRole, ServiceDep
from api.schemas import ModelInfo, ReloadResult, error_responses
from recommender.serving import ServiceError

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
    serving."""
    holder = service.holder
    previous = holder.version
    try:
        snap = holder.reload()
    except Exception as exc:  # ArtifactError, or whatever a broken artifact raises on load
        metrics.count_reload("refused")
        raise ReloadRefused("artifact", f"{type(exc).__name__}: {exc}") from exc
    metrics.count_reload("ok")
    metrics.set_model(snap.engine.version)
    return {"previous_version": previous, "version": snap.engine.version}
