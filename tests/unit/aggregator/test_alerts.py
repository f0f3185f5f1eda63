"""Alert rules on rep snapshots: fire once, resolve with hysteresis, cool down, never twice."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from schemas.roster import AlertRule, AlertRules, Rep, RosterRecord, Shift, Target, Targets, Team
from tests.unit.aggregator.events import ev, full_call
from tests.unit.aggregator.floor import Floor

DAY = datetime(2026, 3, 10, tzinfo=UTC)  # a Tuesday; the team works 09:00-17:00 UTC
NOON = DAY + timedelta(hours=12)  # 3/8 of the shift gone at 12:00


def floor_with(*rules: AlertRule, dials_target: float = 80) -> Floor:
    floor = Floor()
    shift = Shift(days=[1, 2, 3, 4, 5], start=time(9), end=time(17))
    for record in (
        RosterRecord(team=Team(team_id="t1", timezone="UTC", shift=shift)),
        RosterRecord(rep=Rep(rep_id="r1", team_id="t1", name="Alice")),
        RosterRecord(
            targets=Targets(
                subject="team",
                subject_id="t1",
                targets=[
                    Target(kpi="dials", value=dials_target),
                    Target(kpi="conversions", value=4),
                ],
            )
        ),
        RosterRecord(alert_rules=AlertRules(subject="team", subject_id="t1", rules=list(rules))),
    ):
        floor.roster.apply(record)
    return floor


def dial(floor: Floor, n: int, at: datetime, first: int = 0) -> None:
    for i in range(first, first + n):
        for event in full_call(f"c{i}", "r1", at - timedelta(minutes=30), talk=0):
            floor.apply(event, at)


def alerts(floor: Floor, now: datetime) -> list[tuple[str, str]]:
    return [(a.state, a.kind) for a in floor.alerts(floor.snapshot("r1", now), now)]


PACE = AlertRule(
    rule_id="pace-dials",
    kind="pace",
    kpi="dials",
    tolerance=0.2,
    hysteresis=0.05,
    cooldown_minutes=0,
)


def test_pace_fires_once_when_behind_and_resolves_once_back_on_pace() -> None:
    floor = floor_with(PACE)
    dial(floor, 5, NOON)  # expected 30 by noon, floor 24: 5 is behind
    assert alerts(floor, NOON) == [("firing", "pace")]
    assert alerts(floor, NOON + timedelta(seconds=15)) == []  # re-evaluation: no second notice
    dial(floor, 20, NOON, first=5)  # 25 >= 24 but inside the hysteresis band (25.5)
    assert alerts(floor, NOON) == []
    dial(floor, 5, NOON, first=25)
    assert alerts(floor, NOON) == [("resolved", "pace")]
    assert alerts(floor, NOON) == []


def test_alert_ids_are_stable_and_messages_bilingual() -> None:
    floor = floor_with(PACE)
    dial(floor, 1, NOON)
    fired = floor.alerts(floor.snapshot("r1", NOON), NOON)[0]
    dial(floor, 40, NOON, first=1)
    resolved = floor.alerts(floor.snapshot("r1", NOON), NOON)[0]
    assert fired.alert_id == resolved.alert_id == "pace-dials:r1:2026-03-10:1"
    assert "Alice is behind pace on dials" in fired.message_en
    assert "进度落后" in fired.message_zh
    assert resolved.message_en.startswith("Resolved:")
    assert resolved.resolved_at == NOON


def test_pace_is_silent_outside_the_shift_and_early_in_it() -> None:
    floor = floor_with(PACE)
    dial(floor, 0, NOON)
    floor.apply(ev("call.started", "x", DAY + timedelta(hours=8), rep_id="r1"), NOON)
    assert alerts(floor, DAY + timedelta(hours=8)) == []  # before the shift
    assert alerts(floor, DAY + timedelta(hours=9, minutes=3)) == []  # expected < 1 dial
    assert alerts(floor, DAY + timedelta(days=5, hours=12)) == []  # Sunday


def test_cooldown_blocks_a_second_firing() -> None:
    rule = PACE.model_copy(update={"cooldown_minutes": 30})
    floor = floor_with(rule)
    dial(floor, 1, NOON)
    assert alerts(floor, NOON) == [("firing", "pace")]
    dial(floor, 40, NOON, first=1)
    assert alerts(floor, NOON) == [("resolved", "pace")]
    later = NOON + timedelta(hours=3)  # expected 67.5: behind again
    assert alerts(floor, NOON + timedelta(minutes=10)) == []
    assert alerts(floor, later) == [("firing", "pace")]
    assert floor.reps["r1"].alerts["pace-dials"]["alert_id"].endswith(":2")


@pytest.mark.parametrize(("dials", "fires"), [(3, False), (10, True)])
def test_threshold_needs_its_minimum_sample(dials: int, fires: bool) -> None:
    rule = AlertRule(
        rule_id="low-connect",
        kind="threshold",
        kpi="connect_rate",
        window="today",
        op="below",
        value=0.3,
        min_sample=5,
    )
    floor = floor_with(rule)
    dial(floor, dials, NOON)  # all unanswered: connect rate 0
    assert alerts(floor, NOON) == ([("firing", "threshold")] if fires else [])


def test_idle_fires_after_n_quiet_minutes_in_the_shift() -> None:
    rule = AlertRule(rule_id="idle", kind="idle", idle_minutes=15)
    floor = floor_with(rule)
    floor.apply(ev("call.started", "c1", NOON, rep_id="r1"), NOON)
    floor.apply(
        ev("call.ended", "c1", NOON + timedelta(minutes=1), rep_id="r1", end_status="no_answer"),
        NOON,
    )
    assert alerts(floor, NOON + timedelta(minutes=10)) == []
    assert alerts(floor, NOON + timedelta(minutes=17)) == [("firing", "idle")]
    floor.apply(ev("call.started", "c2", NOON + timedelta(minutes=18), rep_id="r1"), NOON)
    assert alerts(floor, NOON + timedelta(minutes=18)) == [("resolved", "idle")]


def test_missed_fires_after_the_shift_when_the_target_was_not_met() -> None:
    rule = AlertRule(rule_id="missed-sales", kind="missed", kpi="conversions")
    floor = floor_with(rule)
    dial(floor, 3, NOON)
    assert alerts(floor, DAY + timedelta(hours=16)) == []
    assert alerts(floor, DAY + timedelta(hours=17, minutes=1)) == [("firing", "missed")]
    assert alerts(floor, DAY + timedelta(hours=18)) == []


def test_alert_state_survives_serialisation_so_a_restart_does_not_renotify() -> None:
    from services.aggregator.domain.rep import RepState

    floor = floor_with(PACE)
    dial(floor, 1, NOON)
    assert alerts(floor, NOON) == [("firing", "pace")]
    floor.reps["r1"] = RepState.from_dict(floor.reps["r1"].to_dict())
    assert alerts(floor, NOON + timedelta(minutes=1)) == []


def test_an_alert_not_delivered_before_a_kill_is_sent_again_once_with_its_id() -> None:
    from services.aggregator.core import Aggregator
    from services.aggregator.metrics import Metrics

    floor = floor_with(PACE)
    dial(floor, 5, NOON)
    [fired] = floor.core.reps.judge(NOON)  # saved with the rule's state; the send never happens
    assert fired.state == "firing"
    # the worker is killed; another starts on the same stores (the changelogs)
    again = Aggregator.build(
        floor.core.calls.store,
        floor.core.reps.store,
        rules=floor.rules,
        roster=floor.roster,
        metrics=Metrics(),
    )
    assert again.reps.judge(NOON + timedelta(seconds=5)) == []  # not yet: it may be in flight
    [resent] = again.reps.judge(NOON + timedelta(seconds=15))
    assert resent == fired  # the same transition, same id: receivers keep it once
    again.reps.delivered([resent])
    assert again.reps.judge(NOON + timedelta(seconds=30)) == []
    assert again.reps.state("r1").outbox == {}


def test_removing_a_rule_resolves_its_firing_alert_once() -> None:
    floor = floor_with(PACE)
    dial(floor, 5, NOON)
    assert alerts(floor, NOON) == [("firing", "pace")]
    floor.roster.apply(RosterRecord(alert_rules=AlertRules(subject="team", subject_id="t1")))
    [resolved] = floor.alerts(floor.snapshot("r1", NOON), NOON + timedelta(seconds=20))
    assert (resolved.state, resolved.alert_id) == ("resolved", "pace-dials:r1:2026-03-10:1")
    assert "no longer applies" in resolved.message_en
    assert alerts(floor, NOON + timedelta(seconds=40)) == []


def test_an_alert_tick_resolves_a_removed_rules_alert_of_a_rep_not_decoded() -> None:
    floor = floor_with(PACE)
    dial(floor, 5, NOON)
    [fired] = floor.core.reps.judge(NOON)
    floor.core.reps.delivered([fired])
    floor.roster.apply(RosterRecord(alert_rules=AlertRules(subject="team", subject_id="t1")))
    floor.core.reps.forget()  # a rebalance: no rule anywhere now, the rep is read from the store
    [resolved] = floor.core.reps.judge(NOON + timedelta(seconds=20))
    assert (resolved.state, resolved.alert_id) == ("resolved", fired.alert_id)
    floor.core.reps.delivered([resolved])
    assert floor.core.reps.judge(NOON + timedelta(seconds=40)) == []
