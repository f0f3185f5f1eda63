"""A seeded sales-floor simulator: realistic call events, a PBX-like sender, and a KPI verifier."""
