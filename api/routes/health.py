"""Liveness, readiness and Prometheus metrics (no key needed: they carry no personal data)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from api.deps import MetricsDep, ServiceDep, api_key_header, role_of
from api.metrics import CONTENT_TYPE
from api.schemas import Health, Readiness
from recommender.serving import StoreError

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz():
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={
    503: {"model": Readiness, "description": "Not ready: the failing check says which."}})
def readyz(service: ServiceDep, request: Request,
           key: Annotated[str | None, Security(api_key_header)] = None):
    """Ready when a model is loaded and the store answers; 503 with the failing check if not.

    No key is needed. Why the model did not load (which may name files on the server) is
    shown only to an admin key; anyone else reads ``not loaded``.
    """
    holder = service.holder
    admin = bool(key) and role_of(key, request.app.state.key_roles) == "admin"
    reason = (holder.last_error or "no model loaded") if admin else "not loaded"
    checks = {"model": "ok" if holder.ready else reason}
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
