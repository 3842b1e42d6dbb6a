"""Liveness, readiness and Prometheus metrics (no key needed: they carry no personal data)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from api.deps import MetricsDep, ServiceDep
from api.metrics import CONTENT_TYPE
from recommender.serving import StoreError

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz():
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(service: ServiceDep):
    """Ready when a model is loaded and the store answers; 503 with the failing check if not."""
    holder = service.holder
    checks = {"model": "ok" if holder.ready else (holder.last_error or "no model loaded")}
    try:
        service.store.ping()
        checks["store"] = "ok"
    except StoreError as exc:
        checks["store"] = f"unavailable ({type(exc).__name__})"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ok else "not_ready",
                         "model_version": holder.version, "checks": checks},
                        status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(service: ServiceDep, metrics: MetricsDep):
    """Prometheus text: request counts, latency histograms, events, reloads, model version
    (every worker's, when several serve)."""
    metrics.set_model(service.holder.version)  # this worker's; the others record theirs
    return Response(metrics.render(), media_type=CONTENT_TYPE)
