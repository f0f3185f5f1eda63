"""Rewind partitions that have no committed offset when Faust seeks "to committed".

Faust drops messages it has already fetched whenever its flow stops (rebalances, the end of
table recovery) and relies on a later seek to the committed offsets to read them again. aiokafka's
`seek_to_committed()` skips partitions whose committed offset is missing or 0, so on a partition
the group has never committed (a new deployment, a new topic) the dropped messages were never
read again, and Faust's next commit could move past them (it only checks for a gap at the head
when there is a committed offset). The two-worker SIGKILL test lost events this way in about
two runs of five with the batched stages (tests/integration/aggregator/test_workers.py).

With `install()`, such partitions are reset to their beginning, which is what the consumer's
`auto_offset_reset="earliest"` means for a group without a committed offset: at-least-once
again.

`install()` also closes an off-by-one in Faust's commit (`Consumer._new_offset`): it refuses to
commit past a gap at the head of the acked offsets only when the gap is two or more offsets, so
a single dropped message right at the committed offset was committed past and never read again
(a clean-clone run lost one `call.ended` that way, every offset committed). Now any gap at the
head holds the commit and seeks the partition back to the missing message;
gaps Faust recorded itself (compaction, transaction markers) are still Faust's to fill.

Checked against faust-streaming 0.15.3 and aiokafka 0.14.0 (pinned in pyproject.toml).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

_faust_new_offset = Consumer._new_offset


async def seek_to_committed_or_beginning(
    consumer: AIOKafkaConsumer,
) -> Mapping[TopicPartition, int | None]:
    """Seek every assigned partition to its committed offset, or to its beginning if none."""
    committed: Mapping[TopicPartition, int | None] = await consumer.seek_to_committed()
    uncommitted = [tp for tp, offset in committed.items() if not offset]
    if uncommitted:
        await consumer.seek_to_beginning(*uncommitted)
    return committed


async def _seek_to_committed(self: Any) -> Mapping[TopicPartition, int | None]:
    return await self.call_thread(seek_to_committed_or_beginning, self._ensure_consumer())  # type: ignore[no-any-return]


def head_is_missing(acked: list[int], committed: int | None) -> bool:
    """Whether the next offset to commit (`committed`, Kafka's "next to read") was never acked."""
    return bool(acked) and committed is not None and min(acked) > committed


def _new_offset(self: Any, tp: Any) -> int | None:
    committed = self._committed_offset[tp]
    if not self._gap[tp] and head_is_missing(self._acked[tp], committed):
        _read_again(self, tp, committed)
        return None
    return _faust_new_offset(self, tp)


def _read_again(consumer: Any, tp: Any, offset: int) -> None:
    """Seek the partition back to the missing message, once per committed offset: the messages
    after it come again too (the stages apply each version once)."""
    asked: dict[Any, int] = consumer.__dict__.setdefault("_callpulse_reread", {})
    if asked.get(tp) != offset:
        asked[tp] = offset
        task = asyncio.ensure_future(consumer.seek(tp, offset))
        _pending.add(task)
        task.add_done_callback(_pending.discard)


_pending: set[asyncio.Future[None]] = set()


def install() -> None:
    """Patch Faust's seek and commit as above (idempotent)."""
    AIOKafkaConsumerThread.seek_to_committed = _seek_to_committed  # type: ignore[method-assign,assignment]
    Consumer._new_offset = _new_offset  # type: ignore[method-assign]
