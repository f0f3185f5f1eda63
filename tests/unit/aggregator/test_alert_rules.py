"""Alert rules: one evaluator per kind, typed rule state stored as the changelog's dict."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, get_args

import pytest

from schemas.alerts import AlertKind
from schemas.kpis import RepSnapshot
from schemas.roster import AlertRule, Shift, Target
from services.aggregator.domain.alerts import (
    EVALUATORS,
    RuleState,
    Scene,
    Verdict,
    advance,
    evaluate,
)
from tests.unit.api.snapshots import make_snapshot

NOON = datetime(2026, 3, 10, 12, tzinfo=UTC)  # a Tuesday; the shift is 09:00-17:00 UTC
SHIFT = Shift(days=[1, 2, 3, 4, 5], start=time(9), end=time(17))
TARGETS = (Target(kpi="dials", value=80), Target(kpi="conversions", value=4))


def snap(at: datetime = NOON, **totals: Any) -> RepSnapshot:
    return make_snapshot("r1", "t1", at, **totals)


def scene(at: datetime = NOON, snapshot: RepSnapshot | None = None) -> Scene:
    return Scene.of(snapshot or snap(at), SHIFT, TARGETS, at)


def test_every_rule_kind_has_an_evaluator() -> None:
    assert set(EVALUATORS) == set(get_args(AlertKind))


LOW_CONNECTS = AlertRule(
    rule_id="low", kind="threshold", kpi="connect_rate", value=0.3, min_sample=5
)
HIGH_TALK = AlertRule(
    rule_id="long", kind="threshold", kpi="avg_talk_seconds", window="15m", op="above", value=600
)
PACE = AlertRule(rule_id="pace", kind="pace", kpi="dials", tolerance=0.2)
IDLE = AlertRule(rule_id="idle", kind="idle", idle_minutes=15)
MISSED = AlertRule(rule_id="missed", kind="missed", kpi="conversions")


@pytest.mark.parametrize(
    ("rule", "at", "totals", "reading"),
    [
        pytest.param(LOW_CONNECTS, NOON, {"dials": 4}, None, id="threshold: below min sample"),
        pytest.param(
            LOW_CONNECTS,
            NOON,
            {"dials": 10, "connects": 2},
            (True, False, 0.2, 0.3),
            id="threshold: below",
        ),
        pytest.param(
            LOW_CONNECTS,
            NOON,
            {"dials": 10, "connects": 3},
            (False, False, 0.3, 0.3),
            id="threshold: back, inside hysteresis",
        ),
        pytest.param(
            HIGH_TALK,
            NOON,
            {"dials": 1, "connects": 1, "talk_seconds": 900},
            (True, False, 900, 600),
            id="threshold: above",
        ),
        pytest.param(PACE, NOON, {"dials": 30}, (False, True, 30, 24), id="pace: on pace"),
        pytest.param(PACE, NOON, {"dials": 5}, (True, False, 5, 24), id="pace: behind"),
        pytest.param(
            PACE, NOON.replace(hour=9, minute=3), {}, None, id="pace: under one dial expected"
        ),
        pytest.param(PACE, NOON.replace(hour=18), {}, None, id="pace: after the shift"),
        pytest.param(IDLE, NOON.replace(hour=8), {}, None, id="idle: before the shift"),
        pytest.param(IDLE, NOON, {}, (True, False, 180, 15), id="idle: quiet since the start"),
        pytest.param(MISSED, NOON, {"conversions": 1}, None, id="missed: shift not over"),
        pytest.param(
            MISSED,
            NOON.replace(hour=17, minute=1),
            {"conversions": 1},
            (True, False, 1, 4),
            id="missed: after the shift",
        ),
        pytest.param(
            MISSED,
            NOON + timedelta(days=4),
            {"conversions": 1},
            None,
            id="missed: day off",
        ),
    ],
)
def test_evaluators(
    rule: AlertRule,
    at: datetime,
    totals: dict[str, Any],
    reading: tuple[bool, bool, float, float] | None,
) -> None:
    got = EVALUATORS[rule.kind](rule, scene(at, snap(at, **totals)))
    if reading is None:
        assert got is None
    else:
        assert got is not None
        assert (got.breach, got.recovered, got.value, got.threshold) == reading


def test_a_rolling_window_alert_belongs_to_the_local_day() -> None:
    got = EVALUATORS["threshold"](
        HIGH_TALK, scene(snapshot=snap(dials=1, connects=1, talk_seconds=900))
    )
    assert got is not None
    assert got.key == "2026-03-10"
    today = EVALUATORS["threshold"](LOW_CONNECTS, scene(snapshot=snap(dials=10)))
    assert today is not None
    assert today.key == "2026-03-10T00:00:00+00:00"  # the window's own start


LEGACY = {
    "key": "2026-03-10",
    "episode": 2,
    "alert_id": "pace:r1:2026-03-10:2",
    "state": "resolved",
    "fired_at": "2026-03-10T11:00:00.250000+00:00",
    "resolved_at": "2026-03-10T11:30:00+00:00",
}


@pytest.mark.parametrize("stored", [LEGACY, {**LEGACY, "state": "firing", "resolved_at": None}])
def test_rule_state_reads_and_writes_the_changelog_dict_unchanged(
    stored: dict[str, Any],
) -> None:
    state = RuleState.from_dict(stored)
    assert state.fired_at == datetime(2026, 3, 10, 11, 0, 0, 250000, tzinfo=UTC)
    assert json.dumps(state.to_dict()) == json.dumps(stored)  # same keys, order and text


def verdict(key: str = "2026-03-10", *, breach: bool, recovered: bool = False) -> Verdict:
    return Verdict(key, breach, recovered, 1.0, 2.0, "en", "zh")


FIRING = RuleState(
    key="2026-03-10", episode=1, alert_id="pace:r1:2026-03-10:1", state="firing", fired_at=NOON
)
RESOLVED = RuleState(
    key="2026-03-10",
    episode=1,
    alert_id="pace:r1:2026-03-10:1",
    state="resolved",
    fired_at=NOON,
    resolved_at=NOON + timedelta(minutes=5),
)
COOLING = PACE.model_copy(update={"cooldown_minutes": 30})
LATER = NOON + timedelta(minutes=10)


@pytest.mark.parametrize(
    ("held", "reading", "now", "moved"),
    [
        pytest.param(None, None, NOON, None, id="nothing to judge"),
        pytest.param(None, verdict(breach=False), NOON, None, id="no breach"),
        pytest.param(None, verdict(breach=True), NOON, FIRING, id="breach fires episode 1"),
        pytest.param(FIRING, verdict(breach=True), LATER, None, id="still firing: silent"),
        pytest.param(
            FIRING, verdict(breach=False), LATER, None, id="inside hysteresis: still firing"
        ),
        pytest.param(
            FIRING,
            verdict(breach=False, recovered=True),
            LATER,
            RuleState(
                key=FIRING.key,
                episode=1,
                alert_id=FIRING.alert_id,
                state="resolved",
                fired_at=NOON,
                resolved_at=LATER,
            ),
            id="recovered resolves",
        ),
        pytest.param(
            FIRING,
            None,
            LATER,
            RuleState(
                key=FIRING.key,
                episode=1,
                alert_id=FIRING.alert_id,
                state="resolved",
                fired_at=NOON,
                resolved_at=LATER,
            ),
            id="no longer applies resolves",
        ),
        pytest.param(
            FIRING,
            verdict("2026-03-11", breach=True),
            LATER,
            RuleState(
                key=FIRING.key,
                episode=1,
                alert_id=FIRING.alert_id,
                state="resolved",
                fired_at=NOON,
                resolved_at=LATER,
            ),
            id="a new window instance resolves the old one first",
        ),
        pytest.param(RESOLVED, verdict(breach=True), LATER, None, id="cooling down"),
        pytest.param(
            RESOLVED,
            verdict(breach=True),
            NOON + timedelta(minutes=35),
            RuleState(
                key=FIRING.key,
                episode=2,
                alert_id="pace:r1:2026-03-10:2",
                state="firing",
                fired_at=NOON + timedelta(minutes=35),
            ),
            id="after the cooldown: episode 2",
        ),
        pytest.param(
            RESOLVED,
            verdict("2026-03-11", breach=True),
            NOON + timedelta(days=1),
            RuleState(
                key="2026-03-11",
                episode=1,
                alert_id="pace:r1:2026-03-11:1",
                state="firing",
                fired_at=NOON + timedelta(days=1),
            ),
            id="a new window instance starts at episode 1",
        ),
    ],
)
def test_advance(
    held: RuleState | None, reading: Verdict | None, now: datetime, moved: RuleState | None
) -> None:
    got = advance(COOLING, "r1", held, reading, now)
    if got is not None and got.state == "firing":  # a new alert keeps the rule it fired by
        assert got.rule == COOLING.model_dump(mode="json")
        got = replace(got, rule=None)
    assert got == moved


def test_evaluate_continues_from_a_stored_state_and_forgets_removed_rules() -> None:
    states: dict[str, dict[str, Any]] = {
        "pace": {**LEGACY, "state": "firing", "resolved_at": None},
        "gone": dict(LEGACY),
    }
    fired = evaluate(states, (PACE,), snap(dials=40), SHIFT, TARGETS, NOON)
    assert [(a.alert_id, a.state) for a in fired] == [("pace:r1:2026-03-10:2", "resolved")]
    assert fired[0].fired_at == datetime(2026, 3, 10, 11, 0, 0, 250000, tzinfo=UTC)
    assert states == {"pace": {**LEGACY, "resolved_at": NOON.isoformat()}}
