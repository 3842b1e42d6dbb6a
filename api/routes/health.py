"""Liveness, readiness and Prometheus metrics (no key needed: they carry no personal data)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from recommender.serving import StoreError

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz():
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request):
    """Ready when a model is loaded and the store answers; 503 with the failing check if not."""
    service = request.app.state.service
    holder = service.holder
    checks = {"model": "ok" if holder.ready else (holder.last_error or "no model loaded")}
    try:
        service.store.ping()
        checks["store"] = "ok"
    except StoreError as exc:
        checks["store"] = f"unavailable ({type(exc).__name__})"
    ok = all(v == "ok" for v in checks.values())
    version = holder.version
    return JSONResponse({"status": "ready" if ok else "not_ready", "model_version": version,
                         "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request):
    """Prometheus text: request counts, latency histograms, events, reloads, model version."""
    holder = request.app.state.service.holder
    version = holder.version
    return PlainTextResponse(request.app.state.metrics.render(version),
                             media_type="text/plain; version=0.0.4; charset=utf-8")
