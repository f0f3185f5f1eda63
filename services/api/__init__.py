"""The API service: read model, REST, SSE, metrics and history."""
