"""How stage 1's facts travel to stage 2: packed per destination partition.

One Kafka message per partition per batch instead of one per fact: stage 2's per-message cost
(Faust stream machinery, ~0.1 ms) is paid once per pack. A fact goes to the partition its rep_id
maps to under Kafka's default partitioner, the same one that places the reps table's changelog
records (the table uses the partitioner), so a rep's facts and its state stay together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import orjson

from services.aggregator.domain.calls import CallState, RepFact, record_fields
from services.kit.partitioning import partition_for

Facts = list[tuple[RepFact, float | None]]
"""Facts with their events' Kafka arrival times (None: not known, from an older worker)."""


def grouped(facts: Iterable[tuple[RepFact, float]], partitions: int) -> dict[int, Facts]:
    """Facts (with their events' Kafka arrival times) by the partition of their rep: one
    message each (`encode`). Order within a partition is kept: a call's versions reach stage 2
    in the order they were made."""
    groups: dict[int, Facts] = defaultdict(list)
    for fact, arrived in facts:
        groups[partition_for(fact.rep_id.encode(), partitions)].append((fact, arrived))
    return groups


def encode(facts: Facts) -> bytes:
    """One stage-2 message: the facts, in order."""
    items = []
    for fact, arrived in facts:
        item = fact.fields()
        item["arrived"] = arrived
        items.append(item)
    return dumps({"facts": items})


def unpack(value: bytes) -> Iterator[tuple[RepFact, float | None]]:
    """The facts of one stage-2 message (an alert tick of an older worker holds none)."""
    for item in loads(value).get("facts", ()):
        yield RepFact.from_dict(item), item.get("arrived")


KEPT_FACTS = 50_000
"""The most facts `SentPacks` keeps (~40 MiB with their packs, by tracemalloc on the bench's
floor); the oldest packs go first. A stage 2 further behind than that decodes what it reads."""


class SentPacks:
    """The facts of the packs a worker sent, by their bytes. Its stage 2 reads back the packs of
    the partitions it holds and takes their facts from here instead of decoding them (decoding
    was ~5 % of the core's time). A pack read that is not here (another worker's, or sent
    before a restart) is decoded: the same bytes always decode to the same facts."""

    def __init__(self, limit: int = KEPT_FACTS) -> None:
        self._packs: dict[bytes, Facts] = {}
        self._facts, self._limit = 0, limit

    def keep(self, value: bytes, facts: Facts) -> None:
        self._facts += len(facts) - len(self._packs.pop(value, ()))
        self._packs[value] = facts
        while self._facts > self._limit:
            self._facts -= len(self._packs.pop(next(iter(self._packs))))

    def unpack(self, value: bytes) -> Facts:
        """The facts of a pack read back (`unpack` for one not kept)."""
        facts = self._packs.pop(value, None)
        if facts is None:
            return list(unpack(value))
        self._facts -= len(facts)
        return facts


def record_json(state: CallState) -> bytes:
    """`call_record(state).model_dump_json()`, byte for byte, without building and validating
    the models (that took ~15 µs of stage 1's ~80 per event; a property test in
    tests/unit/aggregator/test_properties.py holds the two equal)."""
    return orjson.dumps(record_fields(state), default=_encode, option=orjson.OPT_UTC_Z)


def state_json(state: CallState) -> bytes:
    """`dumps(state.stored())`, byte for byte: orjson encodes the dataclass itself, without the
    dict (~20 % less per call; a property test in tests/unit/aggregator/test_properties.py
    holds the two equal)."""
    return dumps(state.stored() if state.forgotten else state)


def dumps(value: Any) -> bytes:
    """Compact JSON bytes (tables, changelogs and internal topics); datetimes as ISO 8601 like
    datetime.isoformat(), Decimals as strings, tuples as arrays: what the domain's to_dict gives."""
    return orjson.dumps(value, default=_encode, option=orjson.OPT_NON_STR_KEYS)


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def loads(raw: bytes) -> Any:
    """Inverse of dumps (also reads what json.dumps wrote)."""
    return orjson.loads(raw)
