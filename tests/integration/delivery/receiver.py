"""A local HTTP receiver standing in for the chat robots and webhook endpoints: it checks each
documented body format and recomputes each signature, as the real services do."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from schemas.alerts import Alert

HOUR_MS = 3600 * 1000


@dataclass
class Received:
    """One request as received, with what did not match the documented format."""

    channel: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    problems: list[str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """POST /<channel>/... for channel in webhook, slack, wecom, dingtalk, feishu."""

    whsec: str
    robot_secret: str
    url: str = ""
    received: list[Received] = field(default_factory=list)
    busy: dict[str, int] = field(default_factory=dict)
    """Channel -> how many requests to answer with a rate-limit error first."""

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{channel}/{rest:path}", self.handle, methods=["POST"])])

    def of(self, channel: str) -> list[Received]:
        return [r for r in self.received if r.channel == channel and not r.problems]

    async def handle(self, request: Request) -> Response:
        channel = request.path_params["channel"]
        body = await request.body()
        try:
            problems = self.check(channel, request, body)
        except Exception as exc:  # a malformed body is a finding, not a receiver crash
            problems = [f"{type(exc).__name__}: {exc}"]
        self.received.append(
            Received(
                channel,
                request.url.path,
                request.url.query,
                dict(request.headers),
                body,
                problems,
            )
        )
        if not problems and self.busy.get(channel, 0) > 0:
            self.busy[channel] -= 1
            self.received[-1].problems.append("answered busy")
            return self.answer(channel, busy=True)
        return self.answer(channel, refused=bool(problems))

    def check(self, channel: str, request: Request, body: bytes) -> list[str]:
        problems: list[str] = []
        if channel == "webhook":
            try:
                Webhook(self.whsec).verify(body, dict(request.headers))
            except WebhookVerificationError as exc:
                problems.append(f"signature: {exc}")
            Alert.model_validate_json(body)
            return problems
        doc = json.loads(body)
        if channel == "slack":
            if set(doc) != {"text", "blocks"} or not doc["text"]:
                problems.append("slack: text and blocks expected")
            kinds = {"header", "section", "context", "divider", "actions"}
            if not all(isinstance(b, dict) and b.get("type") in kinds for b in doc["blocks"]):
                problems.append("slack: unknown block")
        elif channel == "wecom":
            content = doc.get("markdown", {}).get("content")
            if doc.get("msgtype") != "markdown" or not isinstance(content, str):
                problems.append("wecom: markdown.content expected")
            elif len(content.encode()) > 4096:
                problems.append("wecom: content over 4096 bytes")
        elif channel == "dingtalk":
            query = parse_qs(request.url.query)  # percent-decoded, as DingTalk reads it
            timestamp, sign = query["timestamp"][0], query["sign"][0]
            if abs(int(timestamp) - time.time() * 1000) > HOUR_MS:
                problems.append("dingtalk: timestamp out of range")
            to_sign = f"{timestamp}\n{self.robot_secret}".encode()
            digest = hmac.new(self.robot_secret.encode(), to_sign, hashlib.sha256).digest()
            if not hmac.compare_digest(sign, base64.b64encode(digest).decode()):
                problems.append("dingtalk: sign not match")
            markdown = doc.get("markdown", {})
            if (
                doc.get("msgtype") != "markdown"
                or not markdown.get("title")
                or not markdown.get("text")
            ):
                problems.append("dingtalk: markdown.title and markdown.text expected")
        elif channel == "feishu":
            timestamp = doc["timestamp"]
            if not isinstance(timestamp, str) or abs(int(timestamp) - time.time()) > 3600:
                problems.append("feishu: timestamp must be a string within the hour")
            key = f"{timestamp}\n{self.robot_secret}".encode()
            expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            if not hmac.compare_digest(doc["sign"], expected):
                problems.append("feishu: sign match fail")
            if doc.get("msg_type") != "text" or not doc.get("content", {}).get("text"):
                problems.append("feishu: content.text expected")
        else:
            problems.append(f"unknown channel {channel}")
        return problems

    @staticmethod
    def answer(channel: str, *, refused: bool = False, busy: bool = False) -> Response:
        """What each service answers: accepted, refused, or rate-limited."""
        if channel == "webhook":
            return Response(status_code=401 if refused else 503 if busy else 204)
        if channel == "slack":
            if busy:
                return PlainTextResponse("rate_limited", status_code=429)
            return PlainTextResponse(
                "invalid_payload" if refused else "ok", 400 if refused else 200
            )
        if channel == "feishu":
            code = 19021 if refused else 11232 if busy else 0
            return JSONResponse({"code": code, "msg": "success" if code == 0 else "error"})
        code = 310000 if refused else 130101 if busy else 0  # wecom, dingtalk
        return JSONResponse({"errcode": code, "errmsg": "ok" if code == 0 else "error"})
