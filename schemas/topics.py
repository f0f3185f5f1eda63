"""Kafka topic names and their keys, in one place."""

CALL_EVENTS = "callpulse.call-events"
"""Raw v1 events, key: call_id."""

REP_FACTS = "callpulse.rep-facts"
"""Per-rep KPI deltas from stage 1, key: rep_id."""

KPIS = "callpulse.kpis"
"""Latest KPI snapshot per rep, compacted, key: rep_id."""

ALERTS = "callpulse.alerts"
"""Alert transitions (firing / resolved), key: rep_id."""

CALLS = "callpulse.calls"
"""Assembled call records at each new version, compacted, key: call_id."""

ROSTER = "callpulse.roster"
"""Teams, reps and targets, compacted, key: `team:<id>` / `rep:<id>`."""

DEAD_LETTERS = "callpulse.dead-letters"
"""Messages the aggregator could not read (an event that does not validate, a facts pack that
does not decode), as JSON with the reason and where they came from, key: the original key."""
