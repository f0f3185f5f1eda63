"""Fixtures of the ingest integration tests (shared with the unit tests)."""

from __future__ import annotations

from tests.unit.ingest.conftest import _no_callpulse_env

__all__ = ["_no_callpulse_env"]
