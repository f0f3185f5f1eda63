"""Ingest service: call events in over HTTP, durable in Kafka (or the embedded log) out."""
