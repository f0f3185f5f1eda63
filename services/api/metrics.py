"""Prometheus metrics: business gauges rendered from the read model at scrape time, and
operational metrics (HTTP requests, consumer lag, stored calls)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.kpis import KPI_SPECS, WINDOWS, Kpis, WindowName
from services.api.readmodel import ReadModel

SERIES: dict[str, tuple[str, str]] = {
    spec.name: (spec.series, spec.help) for spec in KPI_SPECS if spec.names is not None
}
"""KPI -> (metric suffix, help) of every named KPI, from the declaration in `schemas.kpis`."""
REP_WINDOWS: tuple[WindowName, ...] = ("today",)
"""Windows of the rep-level series; team-level series cover every window."""


class ReadModelCollector(Collector):
    """Team-level series always, rep-level series for the first `rep_cap` reps (by rep_id)."""

    def __init__(self, readmodel: ReadModel, rep_cap: int) -> None:
        self.readmodel, self.rep_cap = readmodel, rep_cap

    def describe(self) -> Iterable[GaugeMetricFamily]:
        """No samples at registration: collecting before the first snapshot would be empty."""
        return []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        """Render the current read model."""
        now = self.readmodel.clock()
        yield from self._teams(now)
        yield from self._reps(now)
        yield _gauge("callpulse_api_reps", "Reps held in the read model.", len(self.readmodel))
        yield _gauge(
            "callpulse_api_sse_subscribers",
            "Open Server-Sent Events streams.",
            self.readmodel.subscriber_count,
        )

    def _teams(self, now: datetime) -> Iterable[GaugeMetricFamily]:
        families = _families("callpulse_team", "team", ["team_id", "window"])
        reps = GaugeMetricFamily(
            "callpulse_team_reps", "Reps of a team by live status.", labels=["team_id", "status"]
        )
        lag = GaugeMetricFamily(
            "callpulse_team_lag_seconds",
            "Largest end-to-end lag of a team's numbers.",
            labels=["team_id"],
        )
        for team_id in self.readmodel.team_ids():
            # Summaries and totals are the read model's cached ones: a scrape adds nothing up.
            summary = self.readmodel.team_summary(team_id)
            if summary is None:
                continue
            for window in WINDOWS:
                totals = self.readmodel.team_totals(team_id, window, now)
                if totals is not None:
                    _add(families, totals, [team_id, window])
            for status, count in summary.status_counts.items():
                reps.add_metric([team_id, status], count)
            lag.add_metric([team_id], summary.lag_seconds)
        yield from families.values()
        yield reps
        yield lag

    def _reps(self, now: datetime) -> Iterable[GaugeMetricFamily]:
        families = _families("callpulse_rep", "rep", ["rep_id", "team_id", "window"])
        snapshots = self.readmodel.snapshots()
        for snap in snapshots[: self.rep_cap]:
            for window in REP_WINDOWS:
                view = self.readmodel.rep(snap.rep_id, window, now)
                if view is not None:
                    _add(families, view.kpis, [snap.rep_id, snap.team_id or "", window])
        yield from families.values()
        yield _gauge(
            "callpulse_api_rep_series_omitted",
            "Reps without rep-level series because of CALLPULSE_REP_METRICS_CAP.",
            max(0, len(snapshots) - self.rep_cap),
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _families(prefix: str, subject: str, labels: list[str]) -> dict[str, GaugeMetricFamily]:
    return {
        kpi: GaugeMetricFamily(
            f"{prefix}_{suffix}", f"{doc}, per {subject} and window.", labels=labels
        )
        for kpi, (suffix, doc) in SERIES.items()
    }


def _add(families: dict[str, GaugeMetricFamily], kpis: Kpis, labels: list[str]) -> None:
    for kpi, family in families.items():
        value = getattr(kpis, kpi)
        if value is not None:  # a null ratio has no sample rather than a fake 0
            family.add_metric(labels, float(value))


class ApiMetrics:
    """Operational metrics of the API service."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "callpulse_api_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "callpulse_api_http_request_duration_seconds",
            "HTTP request latency until the response starts, by route template.",
            ["route", "method"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "callpulse_api_consumer_lag_messages",
            "Messages between the consumer's position and the end of the topic.",
            ["topic"],
            registry=registry,
        )
        self.consumed = Counter(
            "callpulse_api_consumed_messages",
            "Messages consumed, by topic and outcome (applied, stale, invalid).",
            ["topic", "outcome"],
            registry=registry,
        )
        self.calls_stored = Counter(
            "callpulse_api_calls_stored", "Call records written to history.", registry=registry
        )


class HttpMetricsMiddleware:
    """Counts requests and times them until the response starts (SSE streams stay open)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap one HTTP request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self.metrics.latency.labels(_route(scope), scope["method"]).observe(
                    time.perf_counter() - started
                )
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.requests.labels(_route(scope), scope["method"], str(status)).inc()


def _route(scope: Scope) -> str:
    # The route template keeps label cardinality bounded; unmatched paths share one label.
    route: Any = scope.get("route")
    return str(getattr(route, "path", "<unmatched>"))


class AlertMetrics:
    """Alert history and delivery metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.transitions = Counter(
            "callpulse_api_alert_transitions",
            "Alert transitions received, by state and outcome (new, duplicate, invalid).",
            ["state", "outcome"],
            registry=registry,
        )
        self.deliveries = Counter(
            "callpulse_api_alert_deliveries",
            "Alert delivery attempts by channel type and result (sent, retry, failed).",
            ["channel_type", "result"],
            registry=registry,
        )
        self.delivery_duration = Histogram(
            "callpulse_api_alert_delivery_duration_seconds",
            "Duration of one alert delivery attempt, by channel type.",
            ["channel_type"],
            registry=registry,
        )
