"""Error handlers: every 4xx (and 503) is ``{"error": code, "detail": [{field, reason}]}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from recommender.serving import ServiceError, StoreError

log = logging.getLogger(__name__)

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media",
          422: "invalid_request", 429: "too_many_requests", 503: "not_ready"}


def error_body(code: str, field: str, reason: str) -> dict:
    return {"error": code, "detail": [{"field": field, "reason": reason}]}


def _field(loc) -> str:
    # ("query", "k") -> "query.k"; ("body", "events", 3, "value") -> "body.events.3.value"
    return ".".join(str(part) for part in loc) or "request"


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = [{"field": _field(e.get("loc", ())), "reason": e.get("msg", "invalid")}
              for e in exc.errors()]
    return JSONResponse({"error": "invalid_request", "detail": detail}, status_code=422)


async def _service(request: Request, exc: ServiceError) -> JSONResponse:
    return JSONResponse(error_body(exc.code, exc.field, exc.reason), status_code=exc.status)


async def _http(request: Request, exc: HTTPException) -> JSONResponse:
    code = _CODES.get(exc.status_code, "error")
    field = {404: "path", 405: "method"}.get(exc.status_code, "request")
    return JSONResponse(error_body(code, field, str(exc.detail)), status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def _database(request: Request, exc: StoreError) -> JSONResponse:
    # The store is down or refusing: nothing was acknowledged, the client may retry.
    log.error("store error on %s: %s", request.url.path, type(exc).__name__)
    return JSONResponse(error_body("store_unavailable", "store", "the database is unavailable"),
                        status_code=503)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ServiceError, _service)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(StoreError, _database)
