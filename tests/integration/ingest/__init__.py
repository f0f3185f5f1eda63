"""Ingest against the real Kafka broker, and its OpenAPI contract."""
