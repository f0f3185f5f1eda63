"""callpulse services: ingest, aggregator, api, and the embedded runner that wires them."""
