"""The aggregator's operational metrics, the same for the Faust worker and embedded mode."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """Counters of one aggregator (a worker's own registry, or the embedded app's)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.events = Counter(
            "callpulse_aggregator_events_total",
            "Call events by result.",
            ["result"],
            registry=self.registry,
        )
        self.facts = Counter(
            "callpulse_aggregator_facts_total",
            "Rep facts by result.",
            ["result"],
            registry=self.registry,
        )
        self.snapshots = Counter(
            "callpulse_aggregator_snapshots_total",
            "KPI snapshots published.",
            registry=self.registry,
        )
        self.lag = Histogram(
            "callpulse_aggregator_event_lag_seconds",
            "From an event's arrival (in Kafka, or in the embedded log) to its snapshot.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.alerts = Counter(
            "callpulse_aggregator_alerts_total",
            "Alert transitions published.",
            ["kind", "state"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "callpulse_aggregator_dead_letters_total",
            "Messages sent to the dead-letter topic instead of being applied, by source topic.",
            ["source"],
            registry=self.registry,
        )
        self.fail_stops = Counter(
            "callpulse_aggregator_fail_stops_total",
            "Times this worker (by its data folder) stopped hard instead of committing past a "
            "failure; counted again at the next start.",
            registry=self.registry,
        )
        # Restarts of any cause (fail-stop, OOM kill, SIGKILL) show as changes of this value;
        # the fail-stop count above survives its exit through the data folder.
        self.started = Gauge(
            "callpulse_aggregator_start_time_seconds",
            "When this aggregator process started (Unix time); each restart changes it.",
            registry=self.registry,
        )
        self.started.set_to_current_time()
        self.commit_held = Gauge(
            "callpulse_aggregator_commit_held_seconds",
            "How long a partition's commit has been held because the message at its committed "
            "offset was never processed (the worker reads it again); 0 once it moves on.",
            ["topic", "partition"],
            registry=self.registry,
        )
        # label children bound once: `labels()` per event was a twentieth of stage 1's time
        self.events_applied = self.events.labels("applied")
        self.events_duplicate = self.events.labels("duplicate")
        self.events_invalid = self.events.labels("invalid")
        self.events_too_late = self.events.labels("too_late")
        self.facts_applied = self.facts.labels("applied")
        self.facts_duplicate = self.facts.labels("duplicate")
        self.reps = Gauge(
            "callpulse_aggregator_reps", "Reps held by this worker.", registry=self.registry
        )
