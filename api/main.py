"""The application: settings, lifespan (store + model), error handlers, routers, metrics."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.metrics import Metrics, MetricsMiddleware
from api.routes import admin, health, platform
from recommender.serving import ModelHolder, RecommendationService, open_store
from recommender.settings import Settings

log = logging.getLogger("api")


def create_app(settings: Settings | None = None,
               today: Callable[[], dt.date] | None = None) -> FastAPI:
    """Build the app (``uvicorn --factory api.main:create_app`` reads the environment).

    The store is opened and the model loaded in the lifespan; a missing or corrupt artifact
    leaves the app up but not ready (``/readyz`` 503) until an admin reload succeeds.
    """
    settings = settings or Settings()
    key_roles = settings.key_roles()
    if not key_roles and not settings.insecure_dev:
        raise RuntimeError("RECOMMENDER_API_KEYS is empty: set role:key pairs "
                           "(or run `recommender serve --insecure-dev` for local development)")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store = open_store(settings.database_url)
        holder = ModelHolder(settings.artifacts_dir, store)
        try:
            holder.reload()
        except Exception as exc:  # serve (not ready) so an admin can fix and reload
            log.error("no model loaded from %s: %s", settings.artifacts_dir, exc)
        app.state.service = RecommendationService(store, holder, today=today,
                                                  timezone=settings.timezone)
        yield
        store.dispose()

    app = FastAPI(title="Community course recommender", version="1", lifespan=lifespan,
                  description="Personalised course lists for residents, households and "
                              "profiles; participation events; model administration.")
    app.state.settings = settings
    app.state.key_roles = key_roles
    app.state.metrics = Metrics()
    install_error_handlers(app)
    app.include_router(platform.router)
    app.include_router(admin.router)
    app.include_router(health.router)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app
