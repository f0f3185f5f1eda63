"""callpulse wire contracts: call events (v1), KPI snapshots, alerts, roster and topic names."""
