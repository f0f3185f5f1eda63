"""One delivery per alert transition and channel: the same transition published twice, consumed
by two API instances on the same PostgreSQL, then by a third started afresh."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from services.api.alerts.service import StoredAlert
from services.api.db.engine import create_engine
from services.api.db.models import AlertDelivery
from services.kit.kafka import ensure_topics
from tests.integration.api.conftest import Api, ApiFactory, eventually
from tests.integration.api.test_kafka import produce
from tests.integration.delivery.conftest import WHSEC
from tests.integration.delivery.receiver import Receiver
from tests.unit.api.alerts import make_alert, resolve


async def transitions(api: Api) -> dict[str, float]:
    """This instance's alert transitions received, by outcome (new, duplicate)."""
    text = (await api.client.get("/metrics")).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "callpulse_api_alert_transitions_total":
                outcome = sample.labels["outcome"]
                out[outcome] = out.get(outcome, 0) + sample.value
    return out


async def test_one_delivery_per_transition_across_instances(
    api_factory: ApiFactory, kafka_bootstrap: str, receiver: Receiver, unique: str
) -> None:
    common = {
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "ALERT_WEBHOOK_URL": f"{receiver.url}/webhook/{unique}",
        "ALERT_WEBHOOK_SECRET": WHSEC,
        "ALERT_POLL_SECONDS": 0.2,
    }
    # Different consumer groups: each instance consumes every message (replicas sharing a
    # group may do the same across a rebalance).
    first = await api_factory(**common, CONSUMER_GROUP_PREFIX=f"a-{unique}")
    second = await api_factory(**common, CONSUMER_GROUP_PREFIX=f"b-{unique}")
    topic = first.settings.ALERTS_TOPIC
    assert topic == second.settings.ALERTS_TOPIC
    await ensure_topics(kafka_bootstrap, [topic], partitions=2)
    service = first.app.state.callpulse_api.alerts
    rep = f"r-{unique}"
    firing = make_alert(f"a-{unique}", rep_id=rep, team_id=f"t-{unique}")

    async def received(n: int) -> bool:
        counts = [await transitions(first), await transitions(second)]
        return sum(c.get("new", 0) + c.get("duplicate", 0) for c in counts) == n

    async def sent(n: int) -> StoredAlert | None:
        stored: StoredAlert | None = await service.get(firing.alert_id)
        ok = stored is not None and [d.status for d in stored.deliveries] == ["sent"] * n
        return stored if ok else None

    await produce(kafka_bootstrap, topic, [(rep, firing), (rep, firing)])
    await eventually(lambda: received(4))
    await eventually(lambda: sent(1))

    resolved = resolve(firing)
    await produce(kafka_bootstrap, topic, [(rep, resolved), (rep, firing), (rep, resolved)])
    await eventually(lambda: received(10))
    stored = await eventually(lambda: sent(2))
    assert [(d.state, d.attempts) for d in stored.deliveries] == [("firing", 1), ("resolved", 1)]
    new = (await transitions(first)).get("new", 0) + (await transitions(second)).get("new", 0)
    assert new == 2

    # A third instance reading the topic from the start (as after lost offsets) adds nothing.
    third = await api_factory(**common, CONSUMER_GROUP_PREFIX=f"c-{unique}")

    async def replayed() -> bool:
        return (await transitions(third)).get("duplicate", 0) == 5

    await eventually(replayed)
    assert (await transitions(third)).get("new", 0) == 0

    engine = create_engine(first.settings.DATABASE_URL)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(AlertDelivery.state, func.count())
                .where(AlertDelivery.alert_id == firing.alert_id)
                .group_by(AlertDelivery.state)
                .order_by(AlertDelivery.state)
            )
            assert rows.all() == [("firing", 1), ("resolved", 1)]
    finally:
        await engine.dispose()
    hooks = receiver.of("webhook")
    assert [h.json()["state"] for h in hooks] == ["firing", "resolved"]
    assert [r.problems for r in receiver.received] == [[], []]
