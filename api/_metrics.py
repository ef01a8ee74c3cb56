"""Prometheus metrics: requests, latency, decisions by category, verdict-cache hits.

Per process by default: each ``smsguard serve`` process has its own ``/metrics`` and Prometheus
scrapes each (the usual set-up behind a load balancer: one scrape target per process). With
``smsguard serve --workers N`` (N > 1) the workers share one port, so ``serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` before the workers start and ``/metrics`` then sums all workers
(prometheus-client's multiprocess mode; gauges are not used).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from smsguard.core import SmsguardError, get_settings
from smsguard.webauth import http_status

disable_created_metrics()

REQUESTS = Counter("smsguard_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "smsguard_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
DECISIONS = Counter(
    "smsguard_decisions_total",
    "Verdicts answered, by decision and the category of the reason that decided it ('none' for a clean pass)",
    ["decision", "category"],
)
CACHE = Counter("smsguard_verdict_cache_total", "Verdict cache lookups", ["result"])
RATE_LIMITED = Counter("smsguard_rate_limited_total", "Requests answered 429 (tenant over its rate limit)")
AUDIT_ROWS = Counter("smsguard_audit_rows_total", "Verdict rows committed to SQL for audit")

CACHE_HIT = CACHE.labels("hit")
CACHE_MISS = CACHE.labels("miss")

_request_children: dict[tuple[str, str, int], Any] = {}
_latency_children: dict[str, Any] = {}
_decision_children: dict[tuple[str, str], Any] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    key = (method, route, status)
    child = _request_children.get(key)
    if child is None:
        child = _request_children[key] = REQUESTS.labels(method, route, str(status))
    child.inc()
    lat = _latency_children.get(route)
    if lat is None:
        lat = _latency_children[route] = LATENCY.labels(route)
    lat.observe(seconds)


def observe_decision(decision: str, category: str) -> None:
    key = (decision, category)
    child = _decision_children.get(key)
    if child is None:
        child = _decision_children[key] = DECISIONS.labels(decision, category)
    child.inc()


def exposition() -> tuple[bytes, str]:
    """The metrics text and its content type (all workers summed in multiprocess mode)."""
    if get_settings().metrics_dir is not None:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def metrics_middleware(app: Callable) -> Callable:
    """ASGI middleware counting every routed request and timing it (status of raised errors included)."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_status)
        except Exception as e:
            status = http_status(e) if isinstance(e, SmsguardError) else int(getattr(e, "status_code", 500) or 500)
            raise
        finally:
            observe_request(scope["method"], scope.get("path_template") or "unmatched", status,
                            time.perf_counter() - start)

    return middleware
