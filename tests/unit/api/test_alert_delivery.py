"""Alert history and delivery on the embedded (SQLite) database, with a mock HTTP transport and a
controlled clock: idempotency, routing, retries with backoff, ordering, acknowledgement."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.api.alerts.channels import Channel
from services.api.alerts.service import AlertService, Recorded, StoredAlert
from services.api.config import ApiSettings
from services.api.db.engine import create_engine, create_sessionmaker, migrate
from services.api.readmodel import AlertEvent, ReadModel
from services.kit.problems import Problem
from tests.unit.api.alerts import make_alert, resolve

WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
WEBHOOK, ALERTMANAGER = "https://hooks.example/in", "http://am.example:9093"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Receivers:
    """The mock transport: answers by host, records every request."""

    requests: list[httpx.Request] = field(default_factory=list)
    answers: dict[str, Callable[[httpx.Request], httpx.Response]] = field(default_factory=dict)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.get(request.url.host)
        return answer(request) if answer else httpx.Response(200, json={"errcode": 0})

    def hosts(self) -> list[str]:
        return [r.url.host for r in self.requests]


@dataclass
class Setup:
    service: AlertService
    clock: Clock
    receivers: Receivers
    readmodel: ReadModel


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    settings = ApiSettings(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/alerts.db",
        ALERT_WEBHOOK_URL=WEBHOOK,
        ALERT_WEBHOOK_SECRET=WHSEC,
        ALERTMANAGER_URL=ALERTMANAGER,
        ALERT_DELIVERY_MAX_ATTEMPTS=3,
        ALERT_RETRY_BASE_SECONDS=10,
        ALERT_RETRY_MAX_SECONDS=60,
    )
    engine = create_engine(settings.DATABASE_URL)
    await migrate(engine)
    clock, receivers, readmodel = Clock(), Receivers(), ReadModel()
    service = AlertService(settings, create_sessionmaker(engine), readmodel, clock=clock)
    service.dispatcher.transport = httpx.MockTransport(receivers.handle)
    try:
        yield Setup(service, clock, receivers, readmodel)
    finally:
        await engine.dispose()


async def dispatch_once(service: AlertService) -> int:
    """One step of the dispatcher's background loop: claim due deliveries and send them."""
    async with service.dispatcher.client() as client:
        return await service.dispatcher.dispatch(client)


def statuses(stored: StoredAlert | None) -> list[tuple[str, str, str, int]]:
    assert stored is not None
    return sorted(
        (d.state, d.channel.split(":")[0], d.status, d.attempts) for d in stored.deliveries
    )


async def test_a_transition_stored_twice_notifies_each_channel_once(setup: Setup) -> None:
    service = setup.service
    firing = make_alert("a1", at=setup.clock.now)
    assert await service.record([firing, firing]) == Recorded(new=1, duplicate=1)
    assert await service.record([firing]) == Recorded(new=0, duplicate=1)
    assert statuses(await service.get("a1")) == [
        ("firing", "alertmanager", "pending", 0),
        ("firing", "webhook", "pending", 0),
    ]
    assert await dispatch_once(service) == 2
    assert await dispatch_once(service) == 0
    assert sorted(setup.receivers.hosts()) == ["am.example", "hooks.example"]
    assert statuses(await service.get("a1")) == [
        ("firing", "alertmanager", "sent", 1),
        ("firing", "webhook", "sent", 1),
    ]


async def test_resolved_never_goes_back_to_firing(setup: Setup) -> None:
    service = setup.service
    firing = make_alert("a1", at=setup.clock.now)
    resolved = resolve(firing, at=setup.clock.now + timedelta(minutes=3))
    assert await service.record([firing]) == Recorded(1, 0)
    assert await service.record([resolved]) == Recorded(1, 0)
    assert await service.record([firing, resolved]) == Recorded(0, 2)
    stored = await service.get("a1")
    assert stored is not None
    assert stored.alert == resolved
    assert [d.state for d in stored.deliveries] == ["firing", "firing", "resolved", "resolved"]


async def test_a_resolved_transition_of_an_unknown_alert_is_stored(setup: Setup) -> None:
    resolved = resolve(make_alert("a1", at=setup.clock.now))
    assert await setup.service.record([resolved]) == Recorded(1, 0)
    [stored] = await setup.service.find(state="resolved")
    assert stored.alert == resolved


async def test_failed_attempts_back_off_then_fail(setup: Setup) -> None:
    service, clock, receivers = setup.service, setup.clock, setup.receivers
    receivers.answers["hooks.example"] = lambda _: httpx.Response(503, text="busy")
    await service.record([make_alert("a1", at=clock.now)])
    assert await dispatch_once(service) == 2
    assert statuses(await service.get("a1")) == [
        ("firing", "alertmanager", "sent", 1),
        ("firing", "webhook", "pending", 1),
    ]
    assert await dispatch_once(service) == 0  # not due yet: backing off
    for attempt in (2, 3):
        clock.advance(60)
        assert await dispatch_once(service) == 1
        stored = await service.get("a1")
        assert stored is not None
        [webhook] = [d for d in stored.deliveries if d.channel.startswith("webhook")]
        assert webhook.attempts == attempt
        assert webhook.last_error is not None
        assert "HTTP 503" in webhook.last_error
    assert webhook.status == "failed"  # ALERT_DELIVERY_MAX_ATTEMPTS=3
    clock.advance(3600)
    assert await dispatch_once(service) == 0
    assert receivers.hosts().count("hooks.example") == 3


async def test_a_final_refusal_fails_at_once(setup: Setup) -> None:
    setup.receivers.answers["am.example"] = lambda _: httpx.Response(400, json={"code": 400})
    await setup.service.record([make_alert("a1", at=setup.clock.now)])
    await dispatch_once(setup.service)
    assert statuses(await setup.service.get("a1")) == [
        ("firing", "alertmanager", "failed", 1),
        ("firing", "webhook", "sent", 1),
    ]


async def test_a_channel_hears_resolved_only_after_firing(setup: Setup) -> None:
    service, clock, receivers = setup.service, setup.clock, setup.receivers
    answers = iter([httpx.Response(503), httpx.Response(200), httpx.Response(200)])
    receivers.answers["hooks.example"] = lambda _: next(answers)
    firing = make_alert("a1", at=clock.now)
    await service.record([firing])
    await dispatch_once(service)  # webhook firing: 503, retried later
    await service.record([resolve(firing, at=clock.now)])
    await dispatch_once(service)  # alertmanager resolved goes; webhook waits
    assert statuses(await service.get("a1")) == [
        ("firing", "alertmanager", "sent", 1),
        ("firing", "webhook", "pending", 1),
        ("resolved", "alertmanager", "sent", 1),
        ("resolved", "webhook", "pending", 0),
    ]
    clock.advance(60)
    while await dispatch_once(service):
        pass
    webhook_states = [
        json.loads(r.content)["state"] for r in receivers.requests if r.url.host == "hooks.example"
    ]
    assert webhook_states == ["firing", "firing", "resolved"]


async def test_old_transitions_are_kept_but_not_notified(setup: Setup) -> None:
    old = make_alert("a1", at=setup.clock.now - timedelta(hours=2))
    assert await setup.service.record([old]) == Recorded(1, 0)
    assert statuses(await setup.service.get("a1")) == []


async def test_team_channels_replace_the_defaults(setup: Setup) -> None:
    service, now = setup.service, setup.clock.now
    slack = Channel(type="slack", url="https://hooks.slack.com/services/T/B/x")
    assert not (await service.channels("t1")).configured
    await service.put_channels("t1", [slack])
    await service.put_channels("quiet", [])
    await service.record(
        [
            make_alert("a1", team_id="t1", at=now),
            make_alert("a2", team_id="quiet", at=now),
            make_alert("a3", team_id="other", at=now),
            make_alert("a4", team_id=None, at=now),
        ]
    )
    own = await service.get("a1")
    assert own is not None
    assert [d.channel for d in own.deliveries] == [slack.key]
    assert statuses(await service.get("a2")) == []
    assert [s[1] for s in statuses(await service.get("a3"))] == ["alertmanager", "webhook"]
    assert [s[1] for s in statuses(await service.get("a4"))] == ["alertmanager", "webhook"]
    assert not (await service.delete_channels("t1")).configured


async def test_a_channel_removed_before_sending_fails_its_delivery(setup: Setup) -> None:
    service = setup.service
    await service.put_channels("t1", [Channel(type="wecom", url="https://wecom.example/x")])
    await service.record([make_alert("a1", at=setup.clock.now)])
    await service.put_channels("t1", [])
    await dispatch_once(service)
    stored = await service.get("a1")
    assert stored is not None
    [delivery] = stored.deliveries
    assert (delivery.status, delivery.last_error) == ("failed", "channel no longer configured")
    assert setup.receivers.requests == []


async def test_ack_is_idempotent(setup: Setup) -> None:
    service = setup.service
    await service.record([make_alert("a1", at=setup.clock.now)])
    first = await service.ack("a1", "sup-1")
    setup.clock.advance(10)
    again = await service.ack("a1", "sup-2")
    assert (again.acked_at, again.acked_by) == (first.acked_at, "sup-1")
    with pytest.raises(Problem) as raised:
        await service.ack("nope", "sup-1")
    assert raised.value.status == 404


async def test_the_feed_fans_out_stored_transitions_in_seq_order(setup: Setup) -> None:
    service = setup.service
    subscription = setup.readmodel.subscribe("t1")
    async with service.running():
        firing = make_alert("a1", at=setup.clock.now)
        await service.record([firing, make_alert("a2", team_id="t2", at=setup.clock.now)])
        await service.record([resolve(firing, at=setup.clock.now)])
        events: list[Any] = [await subscription.get(), await subscription.get()]
    assert all(isinstance(e, AlertEvent) for e in events)
    assert [(e.alert.alert_id, e.alert.state) for e in events] == [
        ("a1", "firing"),
        ("a1", "resolved"),
    ]
    assert events[0].seq < events[1].seq
    replay = await service.since(events[0].seq, "t1")
    assert [(seq, a.state) for seq, a in replay] == [(events[1].seq, "resolved")]


async def test_a_transition_the_database_would_refuse_is_skipped(setup: Setup) -> None:
    now = setup.clock.now
    refused = [
        make_alert("x" * 600, at=now),
        make_alert("nan", value=float("nan"), at=now),
        make_alert("nul", message_en="a\x00b", at=now),
    ]
    ok = make_alert("ok", at=now)
    assert await setup.service.record([*refused, ok]) == Recorded(new=1, duplicate=0)
    assert [a.alert.alert_id for a in await setup.service.find()] == ["ok"]
