"""Prometheus metrics through ``prometheus_client``, correct with one worker or several.

A pure ASGI middleware counts requests by method, route template and status and records their
latency in a histogram; the route template (``/v1/residents/{resident_id}/recommendations``), not
the raw path, keeps the label set small and carries no resident ids. The routes count posted
events and model reloads, and the model being served is a gauge labelled with its version.

One worker (the default): each app has a :class:`~prometheus_client.CollectorRegistry` of its
own, so several apps in one process (the tests) never share or collide on a series.

Several workers: set ``PROMETHEUS_MULTIPROC_DIR`` (``recommender serve --workers N`` makes a
fresh folder) before the workers start. prometheus_client then writes every worker's values to
files in that folder, and ``/metrics``, whichever worker answers it, aggregates them with a
:class:`~prometheus_client.multiprocess.MultiProcessCollector`: counters and histograms are
summed over the workers (those that have exited included); ``recommender_model_info`` is 1 for
every version some live worker serves, and ``recommender_model_loaded`` is 1 when every live
worker has a model.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Residents' lists ranked in one call (recommender.serving.batching), at most 32.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)
EVENT_OUTCOMES = ("accepted", "duplicate", "rejected")
RELOAD_OUTCOMES = ("ok", "refused")
# The text format generate_latest writes (0.0.4 is what every Prometheus server reads).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The service's metrics and the registry ``/metrics`` renders.

    Parameters
    ----------
    multiprocess_dir : Path, optional
        ``PROMETHEUS_MULTIPROC_DIR`` (see the module docstring). The variable itself must be
        exported before prometheus_client is first imported, which is how prometheus_client
        decides to write its values to files; a folder given without it is refused, since
        ``/metrics`` would then show no request at all.
    """

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = Path(multiprocess_dir) if multiprocess_dir else None
        if self.multiprocess_dir and not getattr(prometheus_values.ValueClass,
                                                 "_multiprocess", False):
            raise RuntimeError("PROMETHEUS_MULTIPROC_DIR must be exported before the service "
                               "starts (prometheus_client reads it when first imported)")
        own = CollectorRegistry()
        # In multiprocess mode the values live in the folder's files; registering the metrics
        # as well would show this worker's values twice.
        target = None if self.multiprocess_dir else own
        self.requests = Counter("recommender_http_requests", "HTTP requests by route and status.",
                                ["method", "route", "status"], registry=target)
        self.latency = Histogram("recommender_http_request_duration_seconds", "Request latency.",
                                 ["method", "route"], buckets=BUCKETS, registry=target)
        self.events = Counter("recommender_events", "Participation events posted, by outcome.",
                              ["outcome"], registry=target)
        self.reloads = Counter("recommender_model_reloads", "Model reloads, by outcome.",
                               ["outcome"], registry=target)
        self.model_info = Gauge("recommender_model_info",
                                "The model being served (1 for each version served).",
                                ["version"], registry=target, multiprocess_mode="livemax")
        self.model_loaded = Gauge("recommender_model_loaded", "Whether a model is loaded.",
                                  registry=target, multiprocess_mode="livemin")
        self.list_batches = Histogram("recommender_list_batch_size",
                                      "Residents' lists ranked together in one call.",
                                      buckets=BATCH_BUCKETS, registry=target)
        for outcome in EVENT_OUTCOMES:  # a series at 0 before the first event, not none
            self.events.labels(outcome)
        for outcome in RELOAD_OUTCOMES:
            self.reloads.labels(outcome)
        self.model_loaded.set(0)
        self._version: str | None = None
        self._lock = threading.Lock()
        if self.multiprocess_dir:
            self.registry = CollectorRegistry()
            MultiProcessCollector(self.registry, path=str(self.multiprocess_dir))
        else:
            self.registry = own

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and record its latency."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def count_events(self, accepted: int, duplicates: int, rejected: int) -> None:
        """Count one batch of posted events by outcome."""
        for outcome, n in zip(EVENT_OUTCOMES, (accepted, duplicates, rejected)):
            if n:
                self.events.labels(outcome).inc(n)

    def observe_batch(self, size: int) -> None:
        """Record how many residents' lists one ranking call ranked together."""
        self.list_batches.observe(size)

    def count_reload(self, outcome: str) -> None:
        """Count one model reload, ``ok`` or ``refused``."""
        self.reloads.labels(outcome).inc()

    def set_model(self, version: str | None) -> None:
        """Record the version this worker serves (None: no model loaded)."""
        with self._lock:
            previous, self._version = self._version, version
            if previous is not None and previous != version:
                if self.multiprocess_dir:
                    # Series cannot be removed from the files: the old version reads 0.
                    self.model_info.labels(previous).set(0)
                else:
                    self.model_info.remove(previous)
            if version is not None:
                self.model_info.labels(version).set(1)
            self.model_loaded.set(1 if version is not None else 0)

    def render(self) -> bytes:
        """The exposition text of every metric (all workers' in multiprocess mode)."""
        return generate_latest(self.registry)

    def close(self) -> None:
        """At shutdown: in multiprocess mode, drop this worker's live gauges from the folder."""
        if self.multiprocess_dir:
            mark_process_dead(os.getpid(), str(self.multiprocess_dir))


class MetricsMiddleware:
    """Pure ASGI middleware (cheaper than ``BaseHTTPMiddleware``) feeding :class:`Metrics`."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            # Unmatched paths share one label so random URLs cannot grow the series set.
            template = getattr(route, "path", None) or "<unmatched>"
            self.metrics.observe(scope["method"], template, status,
                                 time.perf_counter() - started)
