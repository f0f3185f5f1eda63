"""Builders of Alert values for the API tests."""

# Chinese messages use full-width punctuation, as the aggregator writes them.
# ruff: noqa: RUF001

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.alerts import Alert


def make_alert(
    alert_id: str,
    state: str = "firing",
    *,
    rep_id: str = "r1",
    team_id: str | None = "t1",
    at: datetime | None = None,
    **fields: Any,
) -> Alert:
    """A pace alert transition; a resolved one is resolved at `at`."""
    at = at or datetime.now(UTC)
    base: dict[str, Any] = {
        "alert_id": alert_id,
        "state": state,
        "kind": "pace",
        "rule": "dials-pace",
        "rep_id": rep_id,
        "team_id": team_id,
        "kpi": "dials",
        "window": "today",
        "value": 12.0,
        "threshold": 20.0,
        "message_en": f"Rep {rep_id} is behind pace on dials: 12 of an expected 25 by now",
        "message_zh": f"坐席 {rep_id} 的外呼量进度落后：当前 12，按进度此时应达 25",
        "at": at,
        "fired_at": at,
        "resolved_at": at if state == "resolved" else None,
    }
    return Alert.model_validate({**base, **fields})


def resolve(alert: Alert, at: datetime | None = None, **fields: Any) -> Alert:
    """The resolved transition of a firing alert."""
    at = at or datetime.now(UTC)
    return alert.model_copy(
        update={
            "state": "resolved",
            "at": at,
            "resolved_at": at,
            "message_en": f"Resolved: {alert.message_en}",
            "message_zh": f"已恢复：{alert.message_zh}",
            **fields,
        }
    )
