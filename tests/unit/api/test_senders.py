"""Each channel's documented body format and signature, checked on the built request."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from schemas.alerts import Alert
from services.api.alerts.alertmanager import AlertmanagerSender
from services.api.alerts.channels import Channel, redacted_url
from services.api.alerts.dingtalk import DingTalkSender
from services.api.alerts.dispatcher import backoff
from services.api.alerts.feishu import FeishuSender
from services.api.alerts.sender import DeliveryError, SendContext
from services.api.alerts.slack import SlackSender
from services.api.alerts.webhook import WebhookSender, message_id
from services.api.alerts.wecom import WeComSender
from tests.unit.api.alerts import make_alert, resolve

NOW = datetime(2025, 3, 12, 9, 30, tzinfo=UTC)
CTX = SendContext(now=NOW, public_url="https://callpulse.example", firing_ttl_seconds=3600)
WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
ROBOT_SECRET = "SEC0123456789abcdef"
FIRING = make_alert("dials-pace:r1:2025-03-12:1", at=NOW - timedelta(minutes=5))


def send(sender: Any, channel: Channel, alert: Alert = FIRING) -> httpx.Request:
    """The request the sender builds, as httpx sends it."""
    out = sender.request(channel, alert, CTX)
    return httpx.Request("POST", out.url, content=out.body, headers=out.headers)


def test_webhook_is_signed_per_standard_webhooks() -> None:
    channel = Channel(type="webhook", url="https://hooks.example/in", secret=WHSEC)
    request = send(WebhookSender(), channel)
    headers = dict(request.headers)
    assert headers["webhook-id"] == message_id(FIRING)
    assert headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    # Recompute: HMAC-SHA256 over "{id}.{timestamp}.{body}" with the base64-decoded secret.
    key = base64.b64decode(WHSEC.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + request.content
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert Alert.model_validate_json(request.content) == FIRING


def test_webhook_id_is_stable_per_transition() -> None:
    assert message_id(FIRING) == message_id(FIRING.model_copy())
    assert message_id(FIRING) != message_id(resolve(FIRING))


def test_slack_text_and_blocks() -> None:
    alert = FIRING.model_copy(update={"message_en": "a <b> & c"})
    request = send(SlackSender(), Channel(type="slack", url="https://hooks.slack.com/x"), alert)
    body = json.loads(request.content)
    assert set(body) == {"text", "blocks"}
    assert "[FIRING]" in body["text"]
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "context"]
    assert body["blocks"][0]["text"]["type"] == "plain_text"
    message = body["blocks"][1]["text"]
    assert message["type"] == "mrkdwn"
    assert "a &lt;b&gt; &amp; c" in message["text"]
    assert FIRING.message_zh in message["text"]
    assert len(body["blocks"][2]["fields"]) <= 10
    assert "<https://callpulse.example/v1/alerts?rep_id=r1|callpulse>" in str(body["blocks"][3])


def test_wecom_markdown() -> None:
    channel = Channel(type="wecom", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")
    request = send(WeComSender(), channel)
    body = json.loads(request.content)
    assert body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert FIRING.message_en in content
    assert FIRING.message_zh in content
    assert request.url.params["key"] == "k"


def test_wecom_content_fits_4096_bytes() -> None:
    long = make_alert("long", message_zh="很长" * 3000)
    request = send(WeComSender(), Channel(type="wecom", url="https://wecom.example/x"), long)
    content = json.loads(request.content)["markdown"]["content"]
    assert len(content.encode()) <= 4096


def test_dingtalk_markdown_signed_in_the_query() -> None:
    channel = Channel(
        type="dingtalk",
        url="https://oapi.dingtalk.com/robot/send?access_token=tok",
        secret=ROBOT_SECRET,
    )
    request = send(DingTalkSender(), channel)
    query = parse_qs(urlsplit(str(request.url)).query)  # decodes like DingTalk does
    timestamp = query["timestamp"][0]
    assert timestamp == str(int(NOW.timestamp() * 1000))
    string_to_sign = f"{timestamp}\n{ROBOT_SECRET}".encode()
    digest = hmac.new(ROBOT_SECRET.encode(), string_to_sign, hashlib.sha256).digest()
    assert query["sign"] == [base64.b64encode(digest).decode()]
    assert query["access_token"] == ["tok"]
    body = json.loads(request.content)
    assert body["msgtype"] == "markdown"
    assert set(body["markdown"]) == {"title", "text"}
    assert FIRING.message_zh in body["markdown"]["text"]


def test_dingtalk_without_secret_is_not_signed() -> None:
    channel = Channel(type="dingtalk", url="https://oapi.dingtalk.com/robot/send?access_token=t")
    request = send(DingTalkSender(), channel)
    assert set(request.url.params) == {"access_token"}


def test_feishu_text_signed_in_the_body() -> None:
    channel = Channel(
        type="feishu", url="https://open.feishu.cn/open-apis/bot/v2/hook/x", secret=ROBOT_SECRET
    )
    body = json.loads(send(FeishuSender(), channel).content)
    assert body["msg_type"] == "text"
    assert FIRING.message_en in body["content"]["text"]
    assert FIRING.message_zh in body["content"]["text"]
    assert body["timestamp"] == str(int(NOW.timestamp()))
    key = f"{body['timestamp']}\n{ROBOT_SECRET}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert body["sign"] == expected


def test_alertmanager_firing_and_resolved() -> None:
    channel = Channel(type="alertmanager", url="http://am.example:9093/")
    request = send(AlertmanagerSender(), channel)
    assert str(request.url) == "http://am.example:9093/api/v2/alerts"
    [posted] = json.loads(request.content)
    assert posted["labels"] == {
        "alertname": "CallpulsePace",
        "alert_id": FIRING.alert_id,
        "rule": "dials-pace",
        "kind": "pace",
        "rep_id": "r1",
        "team_id": "t1",
        "kpi": "dials",
        "window": "today",
        "severity": "warning",
        "service": "callpulse",
    }
    assert posted["annotations"]["summary"] == FIRING.message_en
    assert posted["annotations"]["summary_zh"] == FIRING.message_zh
    assert posted["startsAt"] == "2025-03-12T09:25:00Z"
    assert posted["endsAt"] == "2025-03-12T10:30:00Z"  # now + the firing TTL
    assert posted["generatorURL"] == "https://callpulse.example/v1/alerts?rep_id=r1"

    resolved = resolve(FIRING, at=NOW)
    [posted] = json.loads(send(AlertmanagerSender(), channel, resolved).content)
    assert posted["endsAt"] == "2025-03-12T09:30:00Z"
    assert posted["labels"]["alert_id"] == FIRING.alert_id  # same labels: the same AM alert

    # a resolution stamped ahead of the sender's clock is posted as resolved now, or
    # Alertmanager would keep the firing notice's later endsAt and never resolve it
    ahead = resolve(FIRING, at=NOW + timedelta(seconds=30))
    [posted] = json.loads(send(AlertmanagerSender(), channel, ahead).content)
    assert posted["endsAt"] == "2025-03-12T09:30:00Z"


def test_alertmanager_leaves_out_a_missing_team() -> None:
    channel = Channel(type="alertmanager", url="http://am.example:9093")
    [posted] = json.loads(
        send(AlertmanagerSender(), channel, make_alert("x", team_id=None)).content
    )
    assert "team_id" not in posted["labels"]


def response(status: int, body: Any = None, text: str | None = None) -> httpx.Response:
    if text is not None:
        return httpx.Response(status, text=text)
    return httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("sender", "answer", "retryable"),
    [
        (SlackSender(), response(200, text="ok"), None),
        (SlackSender(), response(404, text="no_service"), False),
        (SlackSender(), response(429, text="rate_limited"), True),
        (SlackSender(), response(503, text="down"), True),
        (WeComSender(), response(200, {"errcode": 0, "errmsg": "ok"}), None),
        (WeComSender(), response(200, {"errcode": 45009, "errmsg": "freq out of limit"}), True),
        (DingTalkSender(), response(200, {"errcode": 0, "errmsg": "ok"}), None),
        (DingTalkSender(), response(200, {"errcode": 310000, "errmsg": "sign not match"}), True),
        (DingTalkSender(), response(200, text="<html>proxy</html>"), True),
        (FeishuSender(), response(200, {"code": 0, "msg": "success", "data": {}}), None),
        (FeishuSender(), response(200, {"StatusCode": 0, "StatusMessage": "success"}), None),
        (FeishuSender(), response(200, {"code": 19021, "msg": "sign match fail"}), True),
        (AlertmanagerSender(), response(200, text=""), None),
        (AlertmanagerSender(), response(400, {"message": "bad"}), False),
        (WebhookSender(), response(204, text=""), None),
        (WebhookSender(), response(500, text="boom"), True),
    ],
)
def test_answers(sender: Any, answer: httpx.Response, retryable: bool | None) -> None:
    if retryable is None:
        sender.check(answer)
        return
    with pytest.raises(DeliveryError) as raised:
        sender.check(answer)
    assert raised.value.retryable is retryable


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "webhook", "url": "https://x.example"}, "need a secret"),
        ({"type": "webhook", "url": "https://x.example", "secret": "nope!"}, "whsec_"),
        ({"type": "slack", "url": "https://x.example", "secret": "s"}, "take no secret"),
        ({"type": "wecom", "url": "ftp://x.example"}, "http"),
        ({"type": "sms", "url": "https://x.example"}, "type"),
        ({"type": "feishu", "url": "https://x.example", "token": "t"}, "Extra inputs"),
    ],
)
def test_invalid_channels(body: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Channel.model_validate(body)


def test_channel_key_names_type_and_url_only() -> None:
    a = Channel(type="dingtalk", url="https://oapi.dingtalk.com/robot/send?access_token=t")
    b = a.model_copy(update={"secret": None})
    assert a.key == b.key
    assert a.key.startswith("dingtalk:")
    assert "access_token" not in a.key


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/secret", "https://hooks.slack.com/…"),
        ("https://user:pw@am.example:9093", "https://am.example:9093"),
        ("https://oapi.dingtalk.com/robot/send?access_token=t", "https://oapi.dingtalk.com/…"),
    ],
)
def test_redacted_url(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


@pytest.mark.parametrize("attempts", [1, 2, 3, 8, 30])
@pytest.mark.parametrize("rand", [0.0, 0.5, 0.999])
def test_backoff_grows_is_capped_and_jittered(attempts: int, rand: float) -> None:
    delay = backoff(attempts, 5.0, 900.0, lambda: rand)
    full = min(900.0, 5.0 * 2 ** (attempts - 1))
    assert full * 0.5 <= delay < full
    assert backoff(attempts + 1, 5.0, 900.0, lambda: rand) >= delay
