"""What the app holds while it runs: the store, the model and the service, set up in the lifespan.

The store is opened and the model loaded when the app starts, not when it is built: building an
app (tests, ``uvicorn --factory``) touches neither the database nor the artifacts. A missing or
corrupt artifact leaves the app up but not ready (``/readyz`` 503) until an admin reload succeeds.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.metrics import Metrics
from recommender.serving import Follower, ModelHolder, RecommendationService, open_store
from recommender.settings import Settings

log = logging.getLogger("api")
# uvicorn's own start-up logger (configured by uvicorn, beside "Started server process"):
# where the data come from is said where the server says it started.
startup_log = logging.getLogger("uvicorn.error")


def service_lifespan(settings: Settings, metrics: Metrics,
                     today: Callable[[], dt.date] | None = None):
    """The lifespan of an app built from ``settings``: puts ``app.state.service`` in place.

    Parameters
    ----------
    settings : Settings
        Where the store and the artifacts are, and the district time zone.
    metrics : Metrics
        Told which model version this worker serves, and closed at shutdown.
    today : callable, optional
        ``today() -> date`` for the service (tests pin it).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        startup_log.info("using %s", settings.whereabouts())
        store = open_store(settings.database_url)
        holder = ModelHolder(settings.artifacts_dir, store)
        # Opened before the load, so no event stored by another worker falls between them.
        follower = Follower(store, holder)
        try:
            holder.reload()
        except Exception as exc:  # serve (not ready) so an admin can fix and reload
            log.error("no model loaded from %s: %s", settings.artifacts_dir, exc)
        follower.start()
        metrics.set_model(holder.version)
        service = RecommendationService(store, holder, today=today, timezone=settings.timezone)
        service.lists.on_batch = metrics.observe_batch
        app.state.service = service
        # Another worker's events reach an A/B test's other model too.
        follower.others = service.experiments.other_holders
        try:  # a running A/B test is served again after a restart, its models loaded first
            service.experiments.refresh(wait=True)
        except Exception as exc:
            log.error("the running experiment could not be read: %s", exc)
        try:
            yield
        finally:
            follower.stop()
            service.close()  # the impressions still queued are written before the store closes
            store.dispose()
            metrics.close()

    return lifespan
