"""Prometheus instruments of the ingest routes, registered on a registry the caller owns."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class IngestMetrics:
    """The ingest instruments; one instance per registry."""

    requests: Counter
    events: Counter
    rejected: Counter
    publish_seconds: Histogram
    in_flight: Gauge

    @classmethod
    def register(cls, registry: CollectorRegistry) -> IngestMetrics:
        """Create and register the instruments on `registry`."""
        return cls(
            requests=Counter(
                "callpulse_ingest_requests",
                "Ingest HTTP requests by route, provider and status.",
                ["route", "provider", "status"],
                registry=registry,
            ),
            events=Counter(
                "callpulse_ingest_events",
                "Events accepted (durable) by provider.",
                ["provider"],
                registry=registry,
            ),
            rejected=Counter(
                "callpulse_ingest_rejected",
                "Rejected ingest requests by reason.",
                ["reason"],
                registry=registry,
            ),
            publish_seconds=Histogram(
                "callpulse_ingest_publish_seconds",
                "Time to make a batch durable (Kafka acks=all, or the embedded log).",
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                registry=registry,
            ),
            in_flight=Gauge(
                "callpulse_ingest_requests_in_flight",
                "Ingest requests being handled now.",
                registry=registry,
            ),
        )
