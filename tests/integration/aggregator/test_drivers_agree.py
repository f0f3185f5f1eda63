"""One scenario through both drivers of the aggregator core — a real Faust worker on Kafka and
the embedded engine — gives the same snapshots and the same alert sequence.

The scenario has roster changes (a rep moves team, targets change), targets, alert rules, a
call left open past MAX_CALL_SECONDS (closed as failed by the sweep), an ended call forgotten
after the retention, duplicates and reordering.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

import pytest

from schemas.alerts import Alert
from schemas.events import CallEvent, event_to_json, parse_event
from schemas.kpis import RepSnapshot
from schemas.roster import AlertRule, AlertRules, Rep, RosterRecord, Shift, Target, Targets, Team
from services.aggregator.config import AggregatorSettings
from services.aggregator.core import Aggregator, MemoryStore, cadence_of, rules_of
from services.aggregator.domain.roster import RosterView
from services.aggregator.metrics import Metrics
from services.standalone.engine import EmbeddedEngine
from services.standalone.eventlog import SqliteEventLog
from tests.e2e.scenario import midday_timezone
from tests.integration.aggregator.support import Deployment

pytestmark = pytest.mark.timeout(300)

SETTINGS = {
    "MAX_CALL_SECONDS": 60.0,
    "CALL_RETENTION_SECONDS": 30.0,
    "STALE_SWEEP_SECONDS": 2.0,
    "ROLLING_REFRESH_SECONDS": 2.0,
    "ALERT_EVALUATION_SECONDS": 1.0,
}


def _event(kind: str, call: str, at: datetime, n: int, **fields: Any) -> CallEvent:
    return parse_event(
        {"type": kind, "event_id": f"{call}-{n}", "call_id": call, "occurred_at": at, **fields}
    )


def _call(call: str, rep: str, start: datetime, talk: int, **outcome: Any) -> list[CallEvent]:
    events = [
        _event("call.started", call, start, 1, rep_id=rep, direction="outbound"),
        _event("call.answered", call, start + timedelta(seconds=5), 2, rep_id=rep),
        _event(
            "call.ended",
            call,
            start + timedelta(seconds=5 + talk),
            3,
            rep_id=rep,
            end_status="completed",
            direction="outbound",
        ),
    ]
    if outcome:
        at = start + timedelta(seconds=talk + 30)
        events.append(_event("call.outcome", call, at, 4, rep_id=rep, **outcome))
    return events


def _scenario(now: datetime, tz: str) -> list[list[RosterRecord | CallEvent]]:
    """Steps: each a list of roster records and events, applied to both drivers in order."""
    shift = Shift(days=[1, 2, 3, 4, 5, 6, 7], start=clock(8), end=clock(16))
    rules = [
        AlertRule(rule_id="pace-dials", kind="pace", kpi="dials", tolerance=0.2),
        AlertRule(
            rule_id="busy",
            kind="threshold",
            kpi="dials",
            window="today",
            op="above",
            value=3,
            min_sample=0,
        ),
    ]
    targets = [Target(kpi="dials", value=100), Target(kpi="conversions", value=4)]
    roster: list[RosterRecord | CallEvent] = [
        RosterRecord(team=Team(team_id="team-a", name="Alpha", timezone=tz, shift=shift)),
        RosterRecord(team=Team(team_id="team-b", name="Beta", timezone=tz, shift=shift)),
        RosterRecord(rep=Rep(rep_id="rep-a", team_id="team-a", name="Ann")),
        RosterRecord(rep=Rep(rep_id="rep-b", team_id="team-a", name="Bob")),
        RosterRecord(rep=Rep(rep_id="rep-c", team_id="team-b", name="李雷")),
        RosterRecord(targets=Targets(subject="team", subject_id="team-a", targets=targets)),
        RosterRecord(alert_rules=AlertRules(subject="team", subject_id="team-a", rules=rules)),
    ]
    t = now - timedelta(minutes=40)
    calls: list[RosterRecord | CallEvent] = []
    calls += _call("a1", "rep-a", t, 400, outcome="sale", amount="120.50")
    calls += _call("a2", "rep-a", t + timedelta(minutes=8), 90, outcome="callback")
    calls += _call("b1", "rep-b", t + timedelta(minutes=3), 310, outcome="sale", amount="99")
    calls += _call("c1", "rep-c", t + timedelta(minutes=1), 45)
    calls += [  # a CDR: only the end, with its start and answer
        _event(
            "call.ended",
            "a3",
            t + timedelta(minutes=20),
            1,
            rep_id="rep-a",
            direction="outbound",
            end_status="completed",
            started_at=t + timedelta(minutes=18),
            answered_at=t + timedelta(minutes=18, seconds=10),
        ),
        _event("survey.completed", "a1", t + timedelta(minutes=15), 5, rep_id="rep-a", csat=4),
        # open for longer than MAX_CALL_SECONDS: the sweep closes it as failed
        _event("call.started", "b-stale", now - timedelta(minutes=10), 1, rep_id="rep-b"),
        # ended long ago: forgotten after the retention
        *_call("c-old", "rep-c", now - timedelta(minutes=30), 20),
    ]
    # a correction of a1, before the sweep forgets it
    calls.append(_event("call.outcome", "a1", t + timedelta(minutes=30), 9, outcome="no"))
    calls += calls[:4]  # redelivered duplicates
    random.Random(7).shuffle(calls)
    later: list[RosterRecord | CallEvent] = [
        RosterRecord(rep=Rep(rep_id="rep-b", team_id="team-b", name="Bob")),  # moves team
        RosterRecord(
            targets=Targets(
                subject="team",
                subject_id="team-a",
                targets=[Target(kpi="dials", value=120), Target(kpi="conversions", value=4)],
            )
        ),
        *_call("a4", "rep-a", t + timedelta(minutes=25), 30),
        *_call("a5", "rep-a", t + timedelta(minutes=28), 60, outcome="sale", amount="10"),
        *_call("b2", "rep-b", t + timedelta(minutes=26), 70),
        # a survey for the forgotten call
        _event("survey.completed", "c-old", now - timedelta(minutes=2), 7, rep_id="rep-c", csat=2),
    ]
    return [roster, calls, later]


VOLATILE: dict[str, Any] = {
    "as_of": True,
    "lag_seconds": True,
    "windows": {
        w: {"window_start", "window_end"} for w in ("today", "hour", "15m", "60m", "week", "month")
    },
    "targets": {"__all__": {"expected"}},
}


def _comparable(snapshot: RepSnapshot) -> dict[str, Any]:
    return snapshot.model_dump(mode="json", exclude=VOLATILE)


class Embedded:
    """The embedded driver on a log in tmp_path, collecting what it publishes."""

    def __init__(self, tmp_path: Path, settings: AggregatorSettings) -> None:
        self.snapshots: dict[str, RepSnapshot] = {}
        self.alerts: list[Alert] = []
        roster = RosterView(default_timezone=settings.TIMEZONE)
        core = Aggregator.build(
            MemoryStore(),
            MemoryStore(),
            rules=rules_of(settings),
            roster=roster,
            metrics=Metrics(),
            cadence=cadence_of(settings),
        )

        async def no_history(records: object) -> None:
            return None

        self.engine = EmbeddedEngine(
            SqliteEventLog(tmp_path / "events.db"),
            core,
            cadence_of(settings),
            on_snapshot=lambda snap: self.snapshots.__setitem__(snap.rep_id, snap),
            on_records=no_history,
            on_alert=self.alerts.append,
        )


def _kafka_snapshots(deployment: Deployment) -> dict[str, RepSnapshot]:
    latest: dict[str, RepSnapshot] = {}
    for _, value in deployment.read("kpis"):
        if value is not None:
            snap = RepSnapshot.model_validate_json(value)
            latest[snap.rep_id] = snap
    return latest


def _per_rep(alerts: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """Each rep's alert transitions in order (the topic orders them per rep, its key)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for alert in alerts:
        out.setdefault(alert["rep_id"], []).append((alert["alert_id"], alert["state"]))
    return out


def _kafka_alerts(deployment: Deployment) -> dict[str, list[tuple[str, str]]]:
    return _per_rep([json.loads(v) for _, v in deployment.read("alerts") if v is not None])


async def test_the_faust_worker_and_the_embedded_engine_agree(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    tz = midday_timezone(now)
    deployment = await asyncio.to_thread(Deployment, kafka_bootstrap, tmp_path, tz)
    for name, value in SETTINGS.items():
        deployment.env[f"CALLPULSE_{name}"] = str(value)
    settings = AggregatorSettings(TIMEZONE=tz, **SETTINGS)  # type: ignore[arg-type]
    embedded = Embedded(tmp_path, settings)
    await embedded.engine.log.open()
    await embedded.engine.start()
    steps = _scenario(now, tz)
    with deployment.worker("agree"):
        for step in steps:
            events = [e for e in step if not isinstance(e, RosterRecord)]
            records = [r for r in step if isinstance(r, RosterRecord)]
            roster = [(r.key().encode(), r.model_dump_json().encode()) for r in records]
            await asyncio.to_thread(deployment.produce, "roster", roster)
            for record in records:
                await embedded.engine.publish_roster(record)
            await asyncio.sleep(3)  # the worker reads the roster before the events
            await asyncio.to_thread(
                deployment.produce,
                "events",
                [(e.call_id.encode(), event_to_json(e)) for e in events],
            )
            await embedded.engine.publish(events)
            await asyncio.sleep(6)  # sweeps close and forget; alerts are judged
        deadline = time.monotonic() + 90
        while True:
            kafka = await asyncio.to_thread(_kafka_snapshots, deployment)
            alerts = await asyncio.to_thread(_kafka_alerts, deployment)
            mine = {rep: _comparable(s) for rep, s in embedded.snapshots.items()}
            theirs = {rep: _comparable(s) for rep, s in kafka.items()}
            own_alerts = _per_rep([a.model_dump() for a in embedded.alerts])
            if (mine == theirs and own_alerts == alerts) or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
    await embedded.engine.stop()
    await embedded.engine.log.close()
    assert set(mine) == {"rep-a", "rep-b", "rep-c"}
    for rep in mine:
        assert mine[rep] == theirs.get(rep), rep
    assert own_alerts == alerts
    # the scenario did what it claims: the stale call closed, a rep moved, alerts fired
    assert mine["rep-b"]["team_id"] == "team-b"
    assert mine["rep-a"]["windows"]["today"]["dials"] == 5
    assert mine["rep-a"]["windows"]["today"]["conversions"] == 1  # a1 corrected away
    assert mine["rep-b"]["windows"]["today"]["dials"] == 3  # b1, b2 and the stale one
    assert [alert_id.split(":")[0] for alert_id, _ in own_alerts["rep-a"]] == ["pace-dials", "busy"]
