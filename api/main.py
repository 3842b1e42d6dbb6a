"""The application: settings, lifespan, error handlers, routers and the metrics middleware."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import NoReturn

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.deps import configured_key_roles
from api.errors import install_error_handlers
from api.lifespan import service_lifespan
from api.limits import BodyLimitMiddleware
from api.metrics import Metrics, MetricsMiddleware
from api.routes import (
    admin,
    coordinator,
    coordinator_page,
    decisions,
    experiments,
    health,
    platform,
)
from api.schemas import PATH_EXAMPLES
from recommender.serving import StoreError, open_store, unavailable_line
from recommender.settings import Settings, SettingsError, load_settings

# uvicorn's exit code for a worker that failed before serving: it stops, and does not restart
# the workers (each would fail the same way).
STARTUP_FAILURE = 3


def create_app(settings: Settings | None = None,
               today: Callable[[], dt.date] | None = None) -> FastAPI:
    """Build the app (``uvicorn --factory api.main:create_app`` reads ``RECOMMENDER_*``).

    The store is opened and the model loaded in the lifespan (:mod:`api.lifespan`). Without
    ``settings`` (a server start), invalid settings or an unreachable database stop the
    process with one line on stderr (:func:`settings_for_a_start`).

    Raises
    ------
    RuntimeError
        If no API key is configured and ``insecure_dev`` is off.
    """
    settings = settings or settings_for_a_start()
    metrics = Metrics(settings.prometheus_multiproc_dir)
    # The docs pages load Swagger UI and ReDoc from files the app serves, not from a CDN: they
    # work on a machine without internet access.
    app = FastAPIOffline(title="Community course recommender", version="1",
                         lifespan=service_lifespan(settings, metrics, today),
                         description="Personalised course lists for residents, households and "
                                     "profiles; participation events; model administration.")
    app.state.settings = settings
    app.state.key_roles = configured_key_roles(settings)
    app.state.metrics = metrics
    install_error_handlers(app)
    for router in (platform.router, admin.router, coordinator.router, decisions.router,
                   health.router, coordinator_page.router, experiments.router):
        app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       key_roles=app.state.key_roles)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _add_path_examples(app)
    return app


def _add_path_examples(app: FastAPI) -> None:
    """Give every path parameter of the OpenAPI schema its example (:data:`PATH_EXAMPLES`), so
    "Try it out" at /docs starts from a request that succeeds on a generated district."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            for item in build()["paths"].values():  # build() caches app.openapi_schema
                for operation in item.values():
                    for parameter in operation.get("parameters", []):
                        if parameter["in"] == "path" and parameter["name"] in PATH_EXAMPLES:
                            parameter.setdefault("example", PATH_EXAMPLES[parameter["name"]])
        return app.openapi_schema

    app.openapi = openapi


def settings_for_a_start() -> Settings:
    """The environment's settings for a server start, checked before the app exists.

    An invalid setting, no key (and no ``insecure_dev``) or a database that does not answer
    prints one line (``error: ...``, never a key) and exits with :data:`STARTUP_FAILURE`: a
    traceback from every worker would bury the reason.
    """
    try:
        settings = load_settings()
        configured_key_roles(settings)
    except (SettingsError, RuntimeError) as exc:
        _stop(str(exc))
    store = open_store(settings.database, create=False)  # the lifespan creates the schema
    try:
        store.ping()
    except StoreError as exc:
        _stop(unavailable_line(settings.database, exc))
    finally:
        store.dispose()
    return settings


def _stop(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(STARTUP_FAILURE)
