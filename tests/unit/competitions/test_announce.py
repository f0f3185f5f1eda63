"""What an announcement looks like on each channel type: the alert senders' formats and
signatures, with the time of sending."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks import Webhook

from schemas.competitions import Announcement, PeriodOut
from services.api.alerts.channels import Channel
from services.api.alerts.sender import DeliveryError
from services.api.competitions.announce import check, message_id, request

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
SENT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
ANNOUNCEMENT = Announcement(
    announcement_id="competition:7:winners:2026-12-01",
    kind="winners",
    competition_id=7,
    competition="Daily sprint 每日冲刺",
    period=PeriodOut(key="2026-12-01", start=SENT, end=SENT),
    leaders=["ann"],
    message_en='"Daily sprint" (2026-12-01) is over. Winner: ann with 34 points.',
    message_zh="「每日冲刺」（2026-12-01）结束，冠军：ann，得分 34。",  # noqa: RUF001
    at=datetime(2026, 12, 2, 0, 1, tzinfo=UTC),
)


def test_webhook_is_signed_with_the_time_of_sending() -> None:
    out = request(
        Channel(type="webhook", url="https://hooks.example/x", secret=SECRET), ANNOUNCEMENT, SENT
    )
    assert out is not None
    assert out.headers["webhook-id"] == message_id(ANNOUNCEMENT)
    assert out.headers["webhook-timestamp"] == str(int(SENT.timestamp()))
    expected = Webhook(SECRET).sign(out.headers["webhook-id"], SENT, out.body.decode())
    assert out.headers["webhook-signature"] == expected
    assert json.loads(out.body)["kind"] == "winners"


@pytest.mark.parametrize(
    ("kind", "url", "secret", "path"),
    [
        ("slack", "https://hooks.slack.com/services/T/B/x", None, ("text",)),
        (
            "wecom",
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
            None,
            ("markdown", "content"),
        ),
        (
            "dingtalk",
            "https://oapi.dingtalk.com/robot/send?access_token=t",
            "SECabc",
            ("markdown", "text"),
        ),
        (
            "feishu",
            "https://open.feishu.cn/open-apis/bot/v2/hook/x",
            "fs-secret",
            ("content", "text"),
        ),
    ],
)
def test_chat_robots_get_both_languages(
    kind: str, url: str, secret: str | None, path: tuple[str, ...]
) -> None:
    channel = Channel.model_validate({"type": kind, "url": url, "secret": secret})
    out = request(channel, ANNOUNCEMENT, SENT)
    assert out is not None
    body = json.loads(out.body)
    text = body
    for key in path:
        text = text[key]
    assert "Winner: ann" in text
    assert "冠军" in text
    if kind == "dingtalk":
        params = httpx.URL(out.url).params
        assert params["timestamp"] == str(int(SENT.timestamp() * 1000))
        digest = hmac.new(b"SECabc", f"{params['timestamp']}\nSECabc".encode(), hashlib.sha256)
        assert params["sign"] == base64.b64encode(digest.digest()).decode()
    if kind == "feishu":
        assert body["timestamp"] == str(int(SENT.timestamp()))


def test_alertmanager_gets_no_announcements_and_answers_are_judged() -> None:
    channel = Channel(type="alertmanager", url="http://am.example:9093")
    assert request(channel, ANNOUNCEMENT, SENT) is None
    wecom = Channel(type="wecom", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")
    check(wecom, httpx.Response(200, json={"errcode": 0}))
    with pytest.raises(DeliveryError):
        check(wecom, httpx.Response(200, json={"errcode": 45009, "errmsg": "rate"}))
    slack = Channel(type="slack", url="https://hooks.slack.com/services/T/B/x")
    with pytest.raises(DeliveryError) as refused:
        check(slack, httpx.Response(404, text="no_service"))
    assert not refused.value.retryable
