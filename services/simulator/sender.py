"""Posts events to `POST /v1/events` like a real PBX: signed, paced, retried with the same ids.

A batch is retried on 5xx, 408, 429, timeouts and connection errors with exponential backoff and
jitter (or the server's `Retry-After`), keeping its event ids and Standard Webhooks message id and
signing each attempt afresh; after `RetryPolicy.attempts` it is given up and reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from schemas.events import CallEvent, event_to_json
from services.simulator.faults import Scheduled

RETRY_STATUS = frozenset({408, 429})
SIGNING_HINT = (
    "sign with the server's Standard Webhooks secret (whsec_...): the one it was started with "
    "as CALLPULSE_WEBHOOK_SECRET, or for `callpulse run` the file <data dir>/webhook_secret "
    "(default .callpulse/webhook_secret), which this command reads by itself when run from the "
    "same folder or given --data-dir; else pass --secret. Each request carries webhook-id, "
    "webhook-timestamp and webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>."
)
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: attempts per batch, backoff bounds and the request timeout (seconds)."""

    attempts: int = 8
    base_delay: float = 0.25
    max_delay: float = 30.0
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """The fate of one batch: accepted or given up, after how many attempts, and why."""

    accepted: bool
    attempts: int
    detail: str


@dataclass(slots=True)
class SendReport:
    """Totals of a run; `accepted_ids` are the event ids the ingest acknowledged."""

    batches: int = 0
    events: int = 0
    retries: int = 0
    accepted_ids: set[str] = field(default_factory=set)
    failures: list[tuple[str, int, str]] = field(default_factory=list)

    def record(self, batch: Sequence[CallEvent], delivery: Delivery) -> None:
        """Count one batch's delivery."""
        self.batches += 1
        self.events += len(batch)
        self.retries += delivery.attempts - 1
        if delivery.accepted:
            self.accepted_ids.update(event.event_id for event in batch)
        else:
            self.failures.append((batch[0].event_id, len(batch), delivery.detail))


def encode(events: Sequence[CallEvent]) -> bytes:
    """One event as a JSON object, several as a JSON array."""
    if len(events) == 1:
        return event_to_json(events[0])
    return b"[" + b",".join(event_to_json(event) for event in events) + b"]"


def message_id(events: Sequence[CallEvent]) -> str:
    """A Standard Webhooks message id that a retry of the same batch repeats."""
    digest = hashlib.sha256("\n".join(event.event_id for event in events).encode())
    return f"msg_{digest.hexdigest()[:32]}"


class Sender:
    """Delivers batches to one ingest with retries; share one per run."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        secret: str | None,
        policy: RetryPolicy | None = None,
        *,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._client = client
        self._webhook = Webhook(secret) if secret else None
        self._policy = policy or RetryPolicy()
        # Not cryptographic: jitter only spreads retries out.
        self._rng = rng or random.Random()  # noqa: S311
        self._sleep = sleep

    def _headers(self, msg_id: str, body: bytes) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self._webhook is not None:
            now = datetime.now(UTC)
            headers["webhook-id"] = msg_id
            headers["webhook-timestamp"] = str(int(now.timestamp()))
            headers["webhook-signature"] = self._webhook.sign(msg_id, now, body.decode())
        return headers

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        """Seconds before the next attempt: the server's hint, else exponential with jitter."""
        cap = self._policy.max_delay
        if retry_after is not None:
            try:
                return min(cap, max(0.0, float(retry_after)))
            except ValueError:
                pass  # an HTTP-date: fall back to our own schedule
        ceiling = min(cap, self._policy.base_delay * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    async def post(self, events: Sequence[CallEvent]) -> Delivery:
        """POST one batch until it is accepted, rejected for good, or out of attempts."""
        body = encode(events)
        msg_id = message_id(events)
        detail = ""
        for attempt in range(1, self._policy.attempts + 1):
            retry_after = None
            try:
                response = await self._client.post(
                    "/v1/events",
                    content=body,
                    headers=self._headers(msg_id, body),
                    timeout=self._policy.timeout,
                )
            except httpx.TransportError as exc:
                detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                if response.is_success:
                    return Delivery(True, attempt, f"HTTP {response.status_code}")
                detail = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code < 500 and response.status_code not in RETRY_STATUS:
                    return Delivery(False, attempt, detail)
                retry_after = response.headers.get("retry-after")
            if attempt < self._policy.attempts:
                await self._sleep(self._backoff(attempt, retry_after))
        return Delivery(False, self._policy.attempts, f"gave up: {detail}")


def batched(events: Iterable[CallEvent], size: int) -> Iterator[list[CallEvent]]:
    """Consecutive batches of at most `size` events."""
    batch: list[CallEvent] = []
    for event in events:
        batch.append(event)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def send_all(
    sender: Sender,
    batches: Iterable[Sequence[CallEvent]],
    *,
    rate: float | None = None,
    concurrency: int = 8,
    progress: Callable[[int], None] | None = None,
) -> SendReport:
    """Send every batch, at most `concurrency` at a time, paced to `rate` events/s if given."""
    report = SendReport()
    slots = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    began = loop.time()
    queued = 0

    async def deliver(batch: Sequence[CallEvent]) -> None:
        try:
            report.record(batch, await sender.post(batch))
            if progress is not None:
                progress(len(batch))
        finally:
            slots.release()

    async with asyncio.TaskGroup() as group:
        for batch in batches:
            if rate:
                await asyncio.sleep(max(0.0, began + queued / rate - loop.time()))
            await slots.acquire()
            group.create_task(deliver(batch))
            queued += len(batch)
    return report


async def send_live(
    sender: Sender,
    schedule: Iterable[Scheduled],
    stop: asyncio.Event,
    *,
    batch: int = 100,
    clock: Clock | None = None,
    on_sent: Callable[[Sequence[CallEvent], Delivery], None] | None = None,
) -> SendReport:
    """Send each event once its send time has come (past ones at once) until `stop` is set."""
    now = clock or (lambda: datetime.now(UTC))
    report = SendReport()
    pending: list[CallEvent] = []

    async def flush() -> None:
        if pending:
            delivery = await sender.post(pending)
            report.record(pending, delivery)
            if on_sent is not None:
                on_sent(list(pending), delivery)
            pending.clear()

    for item in schedule:
        wait = (item.send_at - now()).total_seconds()
        if wait > 0:
            await flush()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):  # not wait_for: it can swallow a cancel
                    await stop.wait()
        if stop.is_set():
            break
        pending.append(item.event)
        if len(pending) >= batch:
            await flush()
    await flush()
    return report
