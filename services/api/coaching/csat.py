"""CSAT follow-up: a survey score at or below the threshold raises an alert to the team's
channels with the call and the rep, so a supervisor can have the customer called back.

The alert is a `threshold` alert on `csat` whose id is the call's (`csat:<call_id>`): stored
once however often the record is redelivered or however many replicas consume it, and notified
through the alert delivery path like every alert.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from schemas.alerts import Alert
from schemas.calls import CallRecord

RULE = "csat-follow-up"


def _survey_time(record: CallRecord) -> datetime:
    # The survey's own time is the csat facts' time; records without facts: the last event.
    times = [f.at for f in record.facts if f.kpi == "csat_responses"]
    return times[0] if times else record.last_event_at


def follow_ups(records: Iterable[CallRecord], threshold: int) -> list[Alert]:
    """The alerts of the records whose survey scored at or below `threshold` (0: none)."""
    out = []
    for r in records:
        if threshold <= 0 or r.csat is None or r.rep_id is None or r.csat > threshold:
            continue
        at = _survey_time(r)
        team = f" (team {r.team_id})" if r.team_id else ""
        team_zh = f"（团队 {r.team_id}）" if r.team_id else ""  # noqa: RUF001 - Chinese parentheses
        out.append(
            Alert(
                alert_id=f"csat:{r.call_id}",
                state="firing",
                kind="threshold",
                rule=RULE,
                rep_id=r.rep_id,
                team_id=r.team_id,
                kpi="csat",
                window="today",
                value=float(r.csat),
                threshold=float(threshold),
                message_en=f"CSAT {r.csat}/5 on call {r.call_id} by rep {r.rep_id}{team}: "
                "call the customer back",
                message_zh=f"通话 {r.call_id} 满意度 {r.csat}/5，坐席 {r.rep_id}{team_zh}："  # noqa: RUF001
                "请回访客户",
                at=at,
                fired_at=at,
            )
        )
    return out
