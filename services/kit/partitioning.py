"""Which partition a keyed record goes to: the choice of aiokafka's DefaultPartitioner.

Ingest batches events per partition and the aggregator routes facts, snapshots and changelog
records the same way, so a key always lands where a plain keyed send() would put it.
"""

from __future__ import annotations

import functools
import struct
from collections import defaultdict
from collections.abc import Sequence

Record = tuple[bytes, bytes]
"""A Kafka record: (key, value)."""

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def group_by_partition(
    records: Sequence[Record], partitions: tuple[int, ...]
) -> dict[int, list[Record]]:
    """Group records, in order, by the partition the keyed send() would choose for their key."""
    grouped: dict[int, list[Record]] = defaultdict(list)
    for key, value in records:
        grouped[partitions[partition_for(key, len(partitions))]].append((key, value))
    return grouped


@functools.lru_cache(maxsize=1 << 16)
def partition_for(key: bytes, count: int) -> int:
    """`(murmur2(key) & 0x7fffffff) % count`: the index aiokafka's keyed send picks among a
    topic's `count` partitions. Cached: every event of a call shares the call's key."""
    return (murmur2(key) & 0x7FFFFFFF) % count


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (Java client `Utils.murmur2`), equal to `aiokafka.partitioner.murmur2`.

    Reads whole 32-bit words at once: aiokafka's byte-by-byte version was the largest cost
    of publishing a batch.
    """
    length = len(data)
    h = _SEED ^ length
    whole = length & ~3
    for (k,) in struct.iter_unpack("<I", data[:whole]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    if whole < length:
        h ^= int.from_bytes(data[whole:], "little")
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)
