"""Chat robots and the signed webhook over real HTTP: a team's channels receive each transition
once, in order, in their documented formats, with valid signatures (checked by the receiver)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.api.alerts.service import StoredAlert
from tests.integration.api.conftest import ApiFactory, eventually
from tests.integration.delivery.conftest import ROBOT_SECRET, WHSEC
from tests.integration.delivery.receiver import Receiver
from tests.unit.api.alerts import make_alert, resolve

CHANNELS = ("webhook", "slack", "wecom", "dingtalk", "feishu")


def channels(base: str) -> list[dict[str, Any]]:
    return [
        {"type": "webhook", "url": f"{base}/webhook/in", "secret": WHSEC},
        {"type": "slack", "url": f"{base}/slack/services/T0/B0/token"},
        {"type": "wecom", "url": f"{base}/wecom/cgi-bin/webhook/send?key=k1"},
        {
            "type": "dingtalk",
            "url": f"{base}/dingtalk/robot/send?access_token=tok",
            "secret": ROBOT_SECRET,
        },
        {
            "type": "feishu",
            "url": f"{base}/feishu/open-apis/bot/v2/hook/h1",
            "secret": ROBOT_SECRET,
        },
    ]


async def test_each_robot_gets_firing_then_resolved_signed_and_well_formed(
    api_factory: ApiFactory, receiver: Receiver, unique: str
) -> None:
    api = await api_factory(ALERT_POLL_SECONDS=0.2, ALERT_RETRY_BASE_SECONDS=0.05)
    service = api.app.state.callpulse_api.alerts
    team, rep = f"t-{unique}", f"r-{unique}"
    path = f"/v1/teams/{team}/channels"
    assert (
        await api.client.put(path, json={"channels": channels(receiver.url)})
    ).status_code == 200
    receiver.busy = {"wecom": 1, "slack": 1}  # rate-limited once: retried with backoff

    now = datetime.now(UTC)
    firing = make_alert(f"a-{unique}", rep_id=rep, team_id=team, at=now - timedelta(minutes=2))
    await service.record([firing])
    await service.record([resolve(firing, at=now)])

    async def delivered() -> StoredAlert | None:
        stored: StoredAlert | None = await service.get(firing.alert_id)
        done = stored is not None and all(d.status == "sent" for d in stored.deliveries)
        return stored if done else None

    stored = await eventually(delivered)
    assert len(stored.deliveries) == 2 * len(CHANNELS)
    await api.client.delete(path)  # leave no channels behind in the shared database

    assert [r.problems for r in receiver.received if r.problems] == [
        ["answered busy"],
        ["answered busy"],
    ]
    for channel in CHANNELS:
        got = receiver.of(channel)
        assert len(got) == 2, channel
        texts = [r.body.decode() for r in got]
        assert "FIRING" in texts[0] or '"state":"firing"' in texts[0], channel
        assert "RESOLVED" in texts[1] or '"state":"resolved"' in texts[1], channel
        assert firing.message_zh in texts[0], channel

    hooks = receiver.of("webhook")
    assert [h.json()["state"] for h in hooks] == ["firing", "resolved"]
    assert hooks[0].headers["webhook-id"] != hooks[1].headers["webhook-id"]
    assert receiver.of("wecom")[0].query == "key=k1"
    assert receiver.of("dingtalk")[0].query.startswith("access_token=tok&timestamp=")
    assert receiver.of("slack")[0].json()["blocks"][0]["type"] == "header"
    attempts = {
        d.channel.split(":")[0]: d.attempts for d in stored.deliveries if d.state == "firing"
    }
    assert attempts == {"webhook": 1, "slack": 2, "wecom": 2, "dingtalk": 1, "feishu": 1}
