"""Annotated dependencies: settings, the service, the store and role checks on ``X-API-Key``.

Handlers declare what they need (``service: ServiceDep``, ``_: PlatformRole``) and the app state
set up in the lifespan provides it; tests use the same app with their own settings.

Every dependency here is ``async def``: none of them blocks, and FastAPI runs a plain ``def``
dependency in the thread pool, one thread hop (~0.1 ms) per dependency per request.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from api.metrics import Metrics
from recommender.serving import RecommendationService, ServiceError
from recommender.settings import Settings

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False,
    description="A key from RECOMMENDER_API_KEYS; its role decides what it may call.",
)


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_service(request: Request) -> RecommendationService:
    return request.app.state.service


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def configured_key_roles(settings: Settings) -> dict[str, str]:
    """``{key: role}`` of the configured keys; an app without any must be ``insecure_dev``.

    Raises
    ------
    RuntimeError
        If ``RECOMMENDER_API_KEYS`` is empty and ``insecure_dev`` is off.
    """
    key_roles = settings.key_roles()
    if not key_roles and not settings.insecure_dev:
        raise RuntimeError("RECOMMENDER_API_KEYS is empty: set role:key pairs "
                           "(or run `recommender serve --insecure-dev` for local development)")
    return key_roles


def _role_of(key: str, key_roles: dict[str, str]) -> str | None:
    """The role of ``key``, compared in constant time against every configured key."""
    found = None
    for known, role in key_roles.items():
        if hmac.compare_digest(known.encode(), key.encode()):
            found = role
    return found


def require(*roles: str):
    """A dependency that admits a request whose ``X-API-Key`` has one of ``roles``."""

    async def check(request: Request,
                    key: Annotated[str | None, Security(api_key_header)] = None) -> str:
        settings: Settings = request.app.state.settings
        key_roles: dict[str, str] = request.app.state.key_roles
        if not key_roles and settings.insecure_dev:
            return "insecure-dev"
        if not key:
            raise Unauthorized("header.X-API-Key", "missing API key")
        role = _role_of(key, key_roles)
        if role is None:
            raise Unauthorized("header.X-API-Key", "unknown API key")
        if role not in roles:
            needed = " or ".join(roles)
            raise Forbidden("header.X-API-Key",
                            f"role {role!r} may not call this endpoint (needs {needed})")
        return role

    return check


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[RecommendationService, Depends(get_service)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
PlatformRole = Annotated[str, Depends(require("platform"))]
AdminRole = Annotated[str, Depends(require("admin"))]
ReaderRole = Annotated[str, Depends(require("platform", "coordinator", "admin"))]
