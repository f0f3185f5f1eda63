"""One sales-floor scenario for the end-to-end tests: events, how to send them, what to expect."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks import Webhook

from schemas.events import CallEvent, parse_event
from services.aggregator.domain.reference import fold

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_" + base64.b64encode(b"e2e-secret-key-0123456789abcdef").decode()
ADMIN_KEY = "cp_e2e_admin_key_0123456789"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scenario(run: str, now: datetime) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """(unique events, batches as sent: with a duplicate and an out-of-order pair).

    Three reps, six calls: sales, a correction, an unanswered dial, an inbound call whose rep
    appears on answer, a self-contained CDR. All within the last 40 minutes of `now`.
    """
    t = now - timedelta(minutes=40)

    def e(n: int, type_: str, call: str, minutes: float, **fields: Any) -> dict[str, Any]:
        at = (t + timedelta(minutes=minutes)).isoformat()
        return {
            "event_id": f"{run}-e{n}",
            "type": type_,
            "call_id": f"{run}-{call}",
            "occurred_at": at,
            **fields,
        }

    a, b, c = f"{run}-alice", f"{run}-bob", f"{run}-carol"
    events = [
        e(1, "call.started", "c1", 0, rep_id=a, direction="outbound"),
        e(2, "call.answered", "c1", 0.2, rep_id=a),
        e(3, "call.ended", "c1", 6.2, rep_id=a, end_status="completed"),
        e(4, "call.outcome", "c1", 7, rep_id=a, outcome="sale", amount="120.50"),
        e(5, "call.started", "c2", 10, rep_id=a),
        e(6, "call.ended", "c2", 10.5, rep_id=a, end_status="no_answer"),
        e(7, "call.started", "c3", 12, rep_id=b),
        e(8, "call.answered", "c3", 12.1, rep_id=b),
        e(9, "call.ended", "c3", 14.1, rep_id=b, end_status="completed"),
        e(10, "call.outcome", "c3", 15, rep_id=b, outcome="sale", amount="80"),
        e(11, "call.outcome", "c3", 16, rep_id=b, outcome="callback"),  # correction
        e(12, "call.started", "c4", 20, direction="inbound"),
        e(13, "call.answered", "c4", 20.1, rep_id=c),
        e(14, "call.ended", "c4", 25.1, rep_id=c, end_status="completed", direction="inbound"),
        e(15, "survey.completed", "c4", 27, rep_id=c, csat=4),
        e(
            16,
            "call.ended",
            "c5",
            33,
            rep_id=c,
            end_status="completed",
            started_at=(t + timedelta(minutes=28)).isoformat(),
            answered_at=(t + timedelta(minutes=28.3)).isoformat(),
            talk_seconds=281.5,
        ),
        e(17, "call.outcome", "c5", 34, rep_id=c, outcome="sale", amount="999.99"),
    ]
    by_n = {int(ev["event_id"].rsplit("e", 1)[1]): ev for ev in events}
    batches = [
        [by_n[1], by_n[2], by_n[3]],
        [by_n[4]],
        [by_n[4]],  # a retry of the same event: counted once
        [by_n[6], by_n[5]],  # out of order: the end before the start
        [by_n[7], by_n[8], by_n[9], by_n[11]],
        [by_n[10]],  # the older outcome arrives after its correction
        [by_n[12], by_n[13], by_n[14], by_n[15], by_n[16], by_n[17]],
    ]
    return events, batches


def expected(events: list[dict[str, Any]], now: datetime, tz: str) -> dict[str, dict[str, Any]]:
    """Today's KPIs per rep from the reference fold."""
    parsed: list[CallEvent] = [parse_event(ev) for ev in events]
    folded = fold(parsed, now, default_timezone=tz)
    return {rep: windows["today"] for rep, windows in folded.items()}


def signed(body: bytes) -> dict[str, str]:
    """Standard Webhooks headers for a body."""
    msg_id = f"msg_{uuid.uuid4().hex}"
    ts = datetime.now(UTC)
    sig = Webhook(SECRET).sign(msg_id, ts, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(ts.timestamp())),
        "webhook-signature": sig,
        "content-type": "application/json",
    }


def post_batches(base_url: str, batches: list[list[dict[str, Any]]]) -> None:
    """POST each batch signed, as a JSON array; every one must be accepted."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for batch in batches:
            body = json.dumps(batch).encode()
            response = client.post("/v1/events", content=body, headers=signed(body))
            assert response.status_code == 202, response.text
            assert response.json() == {"accepted": len(batch)}


def wait_for_kpis(base_url: str, want: dict[str, dict[str, Any]], timeout: float = 90) -> None:
    """Poll the API until every rep's today KPIs equal `want` (asserting the last difference)."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=base_url, timeout=10, headers=headers) as client:
        while time.monotonic() < deadline:
            last = {}
            for rep in want:
                response = client.get(f"/v1/reps/{rep}/kpis", params={"window": "today"})
                last[rep] = response.json() if response.status_code == 200 else response.status_code
            if all(isinstance(last[r], dict) and _matches(last[r], want[r]) for r in want):
                return
            time.sleep(0.5)
    for rep in want:
        assert isinstance(last[rep], dict), f"{rep}: HTTP {last[rep]}"
        got = {k: last[rep].get(k) for k in want[rep]}
        assert got == want[rep], rep


def _matches(got: dict[str, Any], want: dict[str, Any]) -> bool:
    return all(got.get(k) == v for k, v in want.items())


def wait_http(url: str, timeout: float = 60, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until `url` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {url} was up")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout}s")


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real OS process of ours, stopped (TERM, then KILL) at the end."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def midday_timezone(now: datetime) -> str:
    """A fixed-offset IANA zone where `now` is around noon, so day windows never split a test."""
    offset = max(-12, min(14, 12 - now.hour))
    # Etc/GMT signs are inverted: Etc/GMT-5 is UTC+5.
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"
