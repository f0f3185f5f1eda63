"""Bounded restarts of the embedded mode: a checkpoint of the core's state plus the log after it
gives exactly what replaying the whole log gives — in-process on real SQLite files, and through
`callpulse run` killed with SIGKILL."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from schemas.alerts import Alert
from schemas.calls import CallRecord
from schemas.events import CallEvent, parse_event
from schemas.kpis import RepSnapshot
from schemas.roster import AlertRule, AlertRules, Rep, RosterRecord, Shift, Team
from services.aggregator.config import AggregatorSettings
from services.aggregator.core import Aggregator, MemoryStore, cadence_of, rules_of
from services.aggregator.domain.roster import RosterView
from services.aggregator.metrics import Metrics
from services.simulator.floor import FloorConfig, stream
from services.standalone import engine as engine_module
from services.standalone.engine import EmbeddedEngine
from services.standalone.eventlog import SqliteEventLog
from tests.e2e.scenario import (
    ADMIN_KEY,
    SECRET,
    expected,
    free_port,
    midday_timezone,
    post_batches,
    process,
    scenario,
    wait_for_kpis,
    wait_http,
)

pytestmark = pytest.mark.timeout(180)

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
"""The engines' fixed clock: two engines built at different moments see the same windows."""
Batch = list[CallEvent]


class Driver:
    """An embedded engine over a log file, with a fixed clock, keeping what it publishes."""

    def __init__(self, path: Path, settings: AggregatorSettings, checkpoint_seconds: float) -> None:
        self.snapshots: dict[str, RepSnapshot] = {}
        self.records: dict[str, CallRecord] = {}
        self.history_failures = 0
        self.core = Aggregator.build(
            MemoryStore(),
            MemoryStore(),
            rules=rules_of(settings),
            roster=RosterView(default_timezone="UTC"),
            metrics=Metrics(),
            cadence=cadence_of(settings),
        )
        self.engine = EmbeddedEngine(
            SqliteEventLog(path),
            self.core,
            cadence_of(settings),
            on_snapshot=lambda snap: self.snapshots.__setitem__(snap.rep_id, snap),
            on_records=self._history,
            clock=lambda: NOW,
            checkpoint_seconds=checkpoint_seconds,
        )
        self.started = self.open = False

    async def _history(self, records: list[CallRecord]) -> None:
        if self.history_failures:
            self.history_failures -= 1
            raise RuntimeError("history is down")
        self.records.update((r.call_id, r) for r in records)

    async def start(self) -> None:
        await self.engine.start()
        self.started = True

    async def send(self, batches: Sequence[Batch]) -> None:
        """Publish each batch, running the engine's timers' jobs in between as time would."""
        for n, batch in enumerate(batches):
            await self.engine.publish(batch)
            await self.engine.flush()
            if n % 5 == 4:
                await self.engine.refresh()
                await self.engine.judge()
                await self.engine.sweep()

    async def kill(self) -> None:
        """Stop without a clean stop: nothing more reaches the file (the engine never started,
        so it has no timers)."""
        assert not self.started
        await self.engine.log.close()
        self.open = False

    async def close(self) -> None:
        if self.open:
            if self.started:
                await self.engine.stop()
            await self.engine.log.close()
            self.open = False


Factory = Callable[..., Awaitable[Driver]]


@pytest.fixture
async def engine_factory(tmp_path: Path) -> AsyncIterator[Factory]:
    """`await engine_factory("events.db", start=True, checkpoint_seconds=3600, **settings)`."""
    made: list[Driver] = []

    async def make(
        name: str = "events.db",
        *,
        start: bool = True,
        checkpoint_seconds: float = 3600.0,
        **settings: Any,
    ) -> Driver:
        driver = Driver(tmp_path / name, AggregatorSettings(**settings), checkpoint_seconds)
        made.append(driver)
        await driver.engine.log.open()
        driver.open = True
        if start:
            await driver.start()
        return driver

    yield make
    for driver in made:  # an open aiosqlite connection's thread would keep pytest alive
        await driver.close()


def _floor(hours: float = 3, reps: int = 6) -> list[CallEvent]:
    """A round-the-clock simulated floor's events over the hours before NOW."""
    config = FloorConfig(seed=11, reps=reps, teams=2, shift=None)
    start = NOW - timedelta(hours=hours)
    return list(takewhile(lambda e: e.occurred_at < NOW, stream(config, start)))


def _batches(events: list[CallEvent], rng: random.Random, size: int = 40) -> list[Batch]:
    """Batches as a sender makes them, each shuffled (a call's end may come before its start)."""
    out = [events[i : i + size] for i in range(0, len(events), size)]
    for batch in out:
        rng.shuffle(batch)
    return out


def _comparable(snapshots: dict[str, RepSnapshot]) -> dict[str, dict[str, Any]]:
    return {
        rep: snap.model_dump(mode="json", exclude={"as_of", "lag_seconds"})
        for rep, snap in snapshots.items()
    }


async def _replayed_everything(make: Factory, batches: Sequence[Batch], **settings: Any) -> Driver:
    """A fresh engine over a fresh log holding the same batches: it replays them all."""
    driver = await make(f"all-{uuid.uuid4().hex[:6]}.db", start=False, **settings)
    for batch in batches:
        await driver.engine.log.append(batch)
    await driver.start()
    return driver


def _calls(driver: Driver) -> dict[bytes, dict[str, Any]]:
    arrival = {"incarnation", "arrived_at"}
    return {
        key: {k: v for k, v in json.loads(value).items() if k not in arrival}
        for key, value in driver.core.calls.store.items()
    }


def _replayed_events(logs: list[MutableMapping[str, Any]]) -> int:
    [line] = [entry for entry in logs if entry["event"] == "log_replayed"]
    return int(line["events"])


async def test_checkpoint_plus_log_tail_equals_replaying_everything(
    engine_factory: Factory,
) -> None:
    events = _floor()
    rng = random.Random(3)
    cut = len(events) * 3 // 5
    first = _batches(events[:cut], rng)
    # after the checkpoint: the rest, with retries of events it already covers
    second = _batches(events[cut:] + rng.sample(events[:cut], 40), rng)

    live = await engine_factory(start=False)
    await live.send(first)
    assert await live.engine.checkpoint()
    await live.send(second)
    await live.kill()  # SIGKILL-like: no stop, so no checkpoint after `second`

    with capture_logs() as logs:
        restarted = await engine_factory()
    assert _replayed_events(logs) == len(events) - cut  # the tail only; retries were not logged
    everything = await _replayed_everything(engine_factory, first + second)

    reps = {e.rep_id for e in events if e.rep_id}
    assert set(restarted.snapshots) == set(everything.snapshots) == reps
    assert _comparable(restarted.snapshots) == _comparable(everything.snapshots)
    # the same calls, but for when the second log received them (it was written just now)
    assert _calls(restarted) == _calls(everything)
    # the live engine's call records up to the checkpoint went to history before it
    assert set(live.records) | set(restarted.records) == set(everything.records)


async def test_periodic_and_stop_checkpoints_leave_no_tail(engine_factory: Factory) -> None:
    batches = _batches(_floor(hours=1), random.Random(5))
    half = len(batches) // 2
    live = await engine_factory(checkpoint_seconds=0.05)
    await live.send(batches[:half])
    last = await live.engine.log.count()  # the batches hold no retries: seqs 1..count
    deadline = time.monotonic() + 10
    while (checkpoint := await live.engine.log.load_checkpoint()) is None or checkpoint.seq < last:
        assert time.monotonic() < deadline, "no periodic checkpoint"
        await asyncio.sleep(0.02)
    await live.send(batches[half:])
    await live.close()  # a clean stop checkpoints

    with capture_logs() as logs:
        restarted = await engine_factory()
    assert _replayed_events(logs) == 0
    everything = await _replayed_everything(engine_factory, batches)
    assert _comparable(restarted.snapshots) == _comparable(everything.snapshots)


async def test_retention_deletes_only_checkpointed_events_and_seqs_go_on(
    engine_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two, three = (_batches(part, random.Random(7), size=10_000) for part in _thirds())
    live = await engine_factory(start=False)
    await live.send(one)
    await live.engine.checkpoint()
    await live.send(two)
    covered = sum(len(b) for b in one)

    assert await live.engine.trim_log() == 0  # everything was received just now
    in_36_days = time.time() + 36 * 86400
    assert await live.engine.trim_log(now=in_36_days) == covered  # not `two`: not checkpointed
    assert await live.engine.log.count() == sum(len(b) for b in two)

    monkeypatch.setattr(engine_module, "TRIM_CHUNK", 7)  # many short transactions
    await live.engine.checkpoint()
    assert await live.engine.trim_log(now=in_36_days) == sum(len(b) for b in two)
    assert await live.engine.log.count() == 0
    checkpoint = await live.engine.log.load_checkpoint()
    assert checkpoint is not None
    await live.send(three)
    assert min([seq async for seq, _, _ in live.engine.log.replay()]) > checkpoint.seq
    await live.kill()

    restarted = await engine_factory()
    everything = await _replayed_everything(engine_factory, one + two + three)
    assert _comparable(restarted.snapshots) == _comparable(everything.snapshots)


def _thirds() -> list[list[CallEvent]]:
    events = _floor(hours=1.5, reps=4)
    third = len(events) // 3
    return [events[:third], events[third : 2 * third], events[2 * third :]]


async def test_a_checkpoint_made_with_other_kpi_rules_is_rebuilt_from_the_log(
    engine_factory: Factory,
) -> None:
    batches = _batches(_floor(hours=1), random.Random(9))
    live = await engine_factory(start=False)
    await live.send(batches)
    await live.engine.checkpoint()
    await live.kill()

    with capture_logs() as logs:
        restarted = await engine_factory(CONVERSATION_MIN_SECONDS=60.0)
    assert any(entry["event"] == "checkpoint_discarded" for entry in logs)
    assert _replayed_events(logs) == sum(len(b) for b in batches)
    everything = await _replayed_everything(engine_factory, batches, CONVERSATION_MIN_SECONDS=60.0)
    assert _comparable(restarted.snapshots) == _comparable(everything.snapshots)

    assert await restarted.engine.checkpoint()  # rewrites the whole state, with the new rules
    checkpoint = await restarted.engine.log.load_checkpoint()
    assert checkpoint is not None
    assert json.loads(checkpoint.rules)["conversation_min_seconds"] == 60.0
    stored = {(store, key) for store, key, _ in checkpoint.state}
    assert stored == {("calls", k) for k, _ in restarted.core.calls.store.items()} | {
        ("reps", k) for k, _ in restarted.core.reps.store.items()
    }


async def test_calls_made_and_forgotten_between_checkpoints_cost_it_nothing(
    engine_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _floor(hours=1, reps=3)
    half = len(events) // 2
    live = await engine_factory(
        start=False, CALL_RETENTION_SECONDS=60.0, FORGOTTEN_CALL_RETENTION_SECONDS=0.0
    )
    await live.engine.publish(events[:half])
    await live.engine.checkpoint()
    checkpointed = {key for key, _ in live.core.calls.store.items()}
    await live.engine.publish(events[half:])
    # an hour on by the log's clock, calls ended over a minute before NOW (most of them) are
    # forgotten at the first sweep, and their event ids at the second
    live.core.calls.caught_up(0, time.time() + 3600)
    await live.engine.sweep()
    await live.engine.sweep()
    written: list[Any] = []
    save = live.engine.log.save_checkpoint

    async def spy(seq: int, changes: Any, rules: str, *, replace: bool = False) -> None:
        written.append(changes)
        await save(seq, changes, rules, replace=replace)

    monkeypatch.setattr(live.engine.log, "save_checkpoint", spy)
    assert await live.engine.checkpoint()
    kept = {key for key, _ in live.core.calls.store.items()}
    deleted = {key for key, value in written[0]["calls"].items() if value is None}
    assert deleted == checkpointed - kept  # not the calls made and forgotten since
    assert len(kept) < len({e.call_id for e in events[half:]}) / 2
    checkpoint = await live.engine.log.load_checkpoint()
    assert checkpoint is not None
    assert {(s, k, v) for s, k, v in checkpoint.state} == {
        ("calls", k, v) for k, v in live.core.calls.store.items()
    } | {("reps", k, v) for k, v in live.core.reps.store.items()}


async def test_no_checkpoint_before_history_has_the_call_records(engine_factory: Factory) -> None:
    batches = _batches(_floor(hours=0.5, reps=2), random.Random(11))
    live = await engine_factory(start=False)
    live.history_failures = 1
    await live.engine.publish(batches[0])
    with pytest.raises(RuntimeError, match="history is down"):
        await live.engine.checkpoint()
    assert await live.engine.log.load_checkpoint() is None
    assert await live.engine.checkpoint()
    assert set(live.records) == {e.call_id for e in batches[0]}
    checkpoint = await live.engine.log.load_checkpoint()
    assert checkpoint is not None
    assert checkpoint.seq == len(batches[0])
    assert not await live.engine.checkpoint()  # nothing changed since


async def test_alert_transitions_are_stored_before_a_checkpoint_covers_them(
    engine_factory: Factory,
) -> None:
    stored: list[list[Alert]] = []

    async def record(alerts: list[Alert]) -> None:
        stored.append(list(alerts))

    live = await engine_factory(start=False)
    live.engine.record_alerts = record
    rule = AlertRule(rule_id="busy", kind="threshold", op="above", value=2, min_sample=0)
    for roster in (
        RosterRecord(team=Team(team_id="t1", shift=Shift(days=[1, 2, 3, 4, 5, 6, 7]))),
        RosterRecord(rep=Rep(rep_id="r1", team_id="t1")),
        RosterRecord(alert_rules=AlertRules(subject="team", subject_id="t1", rules=[rule])),
    ):
        await live.engine.publish_roster(roster)
    dials = [
        parse_event(
            {
                "type": "call.started",
                "event_id": f"e{i}",
                "call_id": f"c{i}",
                "rep_id": "r1",
                "occurred_at": NOW - timedelta(minutes=5),
            }
        )
        for i in range(3)
    ]
    await live.send([dials])
    assert await live.engine.checkpoint()
    assert [[(a.rule, a.state) for a in batch] for batch in stored] == [[("busy", "firing")]]
    await live.send([dials[:1]])  # a retry: nothing new
    await live.engine.checkpoint()
    assert len(stored) == 1


# -- the real process ------------------------------------------------------------------------------


def _log_lines(path: Path, event: str) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text().splitlines() if line.startswith("{")]
    return [entry for entry in map(json.loads, lines) if entry.get("event") == event]


def _checkpoint_seq(events_db: Path) -> int | None:
    with sqlite3.connect(events_db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "checkpoint" not in tables:
            return None
        row = conn.execute("SELECT seq FROM checkpoint").fetchone()
    return None if row is None else int(row[0])


def test_callpulse_run_killed_after_a_checkpoint_restarts_exactly_from_the_tail(
    tmp_path: Path,
) -> None:
    run = f"ckp{uuid.uuid4().hex[:8]}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    args = ["services.cli", "run", "--port", str(port), "--data-dir", str(data)]
    now = datetime.now(UTC)
    events, batches = scenario(run, now)
    tz = midday_timezone(now)
    env = {
        "CALLPULSE_WEBHOOK_SECRET": SECRET,
        "CALLPULSE_TIMEZONE": tz,
        "CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
    }
    # batches 1-2 hold events 1-4 (one call); batch 3 retries event 4 after the checkpoint
    head = [e for batch in batches[:2] for e in batch]

    with process(args, {**env, "CALLPULSE_CHECKPOINT_SECONDS": "0.5"}, tmp_path / "a.log") as a:
        wait_http(f"{url}/readyz", proc=a)
        post_batches(url, batches[:2])
        deadline = time.monotonic() + 30
        while _checkpoint_seq(data / "events.db") != len(head):
            assert time.monotonic() < deadline, "no periodic checkpoint"
            time.sleep(0.1)
        a.kill()
        a.wait()

    # no periodic checkpoint from here on: the kill leaves a tail
    env["CALLPULSE_CHECKPOINT_SECONDS"] = "3600"
    with process(args, env, tmp_path / "b.log") as b:
        wait_http(f"{url}/readyz", proc=b)
        wait_for_kpis(url, expected(head, now, tz), timeout=30)
        post_batches(url, batches[2:])
        wait_for_kpis(url, expected(events, now, tz))
        b.kill()
        b.wait()
    [replayed] = _log_lines(tmp_path / "b.log", "log_replayed")
    assert (replayed["events"], replayed["after_seq"]) == (0, len(head))

    with process(args, env, tmp_path / "c.log") as c:
        wait_http(f"{url}/readyz", proc=c)
        wait_for_kpis(url, expected(events, now, tz), timeout=30)
    [replayed] = _log_lines(tmp_path / "c.log", "log_replayed")
    assert (replayed["events"], replayed["after_seq"]) == (len(events) - len(head), len(head))

    with sqlite3.connect(data / "callpulse.db") as conn:
        calls = {r[0] for r in conn.execute("SELECT call_id FROM calls")}
    assert calls == {f"{run}-c{i}" for i in range(1, 6)}
