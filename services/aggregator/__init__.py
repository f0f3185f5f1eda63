"""The aggregator: call assembly and KPI windows (Faust app around a pure domain)."""
