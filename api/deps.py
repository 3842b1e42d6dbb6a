"""Annotated dependencies: settings, the service, the store and role checks on ``X-API-Key``.

Handlers declare what they need (``service: ServiceDep``, ``_: PlatformRole``) and the app state
set up in the lifespan provides it; tests use the same app with their own settings.

Every dependency here is ``async def``: none of them blocks, and FastAPI runs a plain ``def``
dependency in the thread pool, one thread hop (~0.1 ms) per dependency per request.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from api.metrics import Metrics
from recommender.serving import RecommendationService, ServiceError
from recommender.settings import KeyGrant, Settings

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


def role_of(key: str, key_roles: dict[str, str]) -> str | None:
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
        role = role_of(key, key_roles)
        if role is None:
            raise Unauthorized("header.X-API-Key", "unknown API key")
        if role not in roles:
            needed = " or ".join(roles)
            raise Forbidden("header.X-API-Key",
                            f"role {role!r} may not call this endpoint (needs {needed})")
        return role

    return check


@dataclass(frozen=True)
class Scope:
    """Who is calling and which communities they may act on.

    ``communities`` is None when the key covers every community (admins, unscoped coordinator
    keys, insecure development). ``who`` names the caller in records: role and key fingerprint,
    never the key.
    """

    role: str
    communities: frozenset[str] | None
    who: str


def _grants(request: Request) -> dict[str, KeyGrant]:
    """The configured keys' grants, parsed once per app (the settings were checked at start)."""
    state = request.app.state
    if getattr(state, "key_grants", None) is None:
        state.key_grants = state.settings.key_grants()
    return state.key_grants


def require_scope(*roles: str):
    """A dependency that admits ``roles`` (as :func:`require`) and gives the caller's
    :class:`Scope`."""
    check_role = require(*roles)

    async def scope(request: Request,
                    key: Annotated[str | None, Security(api_key_header)] = None) -> Scope:
        role = await check_role(request, key)
        if role == "insecure-dev":
            return Scope(role, None, role)
        grant = next(g for known, g in _grants(request).items()
                     if hmac.compare_digest(known.encode(), (key or "").encode()))
        return Scope(role, grant.communities, f"{role}:{grant.fingerprint}")

    return scope


def check_community(scope: Scope, community_id: str) -> None:
    """Refuse (403) a community outside the caller's scope.

    ``"all"`` (district-wide) is allowed only to keys without a scope (admins, unscoped
    coordinators). The message names the community, never the key.
    """
    if scope.communities is None:
        return
    if community_id == "all":
        raise Forbidden("path.community_id", "community 'all' (district-wide) is refused to a "
                        f"key limited to {', '.join(sorted(scope.communities))}")
    if community_id not in scope.communities:
        raise Forbidden("path.community_id", f"community {community_id!r} is outside this "
                        f"key's communities ({', '.join(sorted(scope.communities))})")


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[RecommendationService, Depends(get_service)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
PlatformRole = Annotated[str, Depends(require("platform"))]
AdminRole = Annotated[str, Depends(require("admin"))]
ReaderRole = Annotated[str, Depends(require("platform", "coordinator", "admin"))]
# A coordinator or admin, with the communities their key covers (see check_community).
CoordinatorScope = Annotated[Scope, Depends(require_scope("coordinator", "admin"))]
