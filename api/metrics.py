"""Prometheus metrics written by hand (text exposition format 0.0.4): no extra dependency.

A pure ASGI middleware counts requests by method, route template and status and records their
latency in a histogram; the route template (``/v1/residents/{resident_id}/recommendations``), not
the raw path, keeps the label set small and carries no resident ids.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Request counters and latency histograms, plus counters the routes bump."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.events: dict[str, int] = defaultdict(int)
        self.reloads: dict[str, int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            key = (method, route)
            counts = self.buckets.setdefault(key, [0] * (len(BUCKETS) + 1))
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.sums[key] += seconds

    def count_events(self, accepted: int, duplicates: int, rejected: int) -> None:
        with self._lock:
            self.events["accepted"] += accepted
            self.events["duplicate"] += duplicates
            self.events["rejected"] += rejected

    def count_reload(self, outcome: str) -> None:
        with self._lock:
            self.reloads[outcome] += 1

    def render(self, model_version: str | None) -> str:
        """The exposition text."""
        out = ["# HELP recommender_http_requests_total HTTP requests by route and status.",
               "# TYPE recommender_http_requests_total counter"]
        with self._lock:
            for (method, route, status), n in sorted(self.requests.items()):
                out.append(f'recommender_http_requests_total{{method="{method}",'
                           f'route="{_esc(route)}",status="{status}"}} {n}')
            out += ["# HELP recommender_http_request_duration_seconds Request latency.",
                    "# TYPE recommender_http_request_duration_seconds histogram"]
            for (method, route), counts in sorted(self.buckets.items()):
                labels = f'method="{method}",route="{_esc(route)}"'
                total = 0
                for edge, n in zip((*BUCKETS, float("inf")), counts):
                    total += n
                    le = "+Inf" if edge == float("inf") else repr(edge)
                    out.append(f'recommender_http_request_duration_seconds_bucket{{{labels},'
                               f'le="{le}"}} {total}')
                out.append(f"recommender_http_request_duration_seconds_sum{{{labels}}} "
                           f"{self.sums[(method, route)]:.6f}")
                out.append(f"recommender_http_request_duration_seconds_count{{{labels}}} {total}")
            out += ["# HELP recommender_events_total Participation events posted, by outcome.",
                    "# TYPE recommender_events_total counter"]
            for outcome in ("accepted", "duplicate", "rejected"):
                out.append(f'recommender_events_total{{outcome="{outcome}"}} '
                           f"{self.events[outcome]}")
            out += ["# HELP recommender_model_reloads_total Model reloads, by outcome.",
                    "# TYPE recommender_model_reloads_total counter"]
            for outcome in ("ok", "refused"):
                out.append(f'recommender_model_reloads_total{{outcome="{outcome}"}} '
                           f"{self.reloads[outcome]}")
        out += ["# HELP recommender_model_info The model being served (value is always 1).",
                "# TYPE recommender_model_info gauge"]
        if model_version:
            out.append(f'recommender_model_info{{version="{_esc(model_version)}"}} 1')
        out += ["# HELP recommender_model_loaded Whether a model is loaded.",
                "# TYPE recommender_model_loaded gauge",
                f"recommender_model_loaded {1 if model_version else 0}"]
        return "\n".join(out) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


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
