"""The application: settings, lifespan, error handlers, routers and the metrics middleware."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from fastapi import FastAPI

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
from recommender.settings import Settings


def create_app(settings: Settings | None = None,
               today: Callable[[], dt.date] | None = None) -> FastAPI:
    """Build the app (``uvicorn --factory api.main:create_app`` reads ``RECOMMENDER_*``).

    The store is opened and the model loaded in the lifespan (:mod:`api.lifespan`).

    Raises
    ------
    RuntimeError
        If no API key is configured and ``insecure_dev`` is off.
    """
    settings = settings or Settings()
    metrics = Metrics(settings.prometheus_multiproc_dir)
    app = FastAPI(title="Community course recommender", version="1",
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
    return app
