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


def pack(facts: Iterable[tuple[RepFact, float]], partitions: int) -> dict[int, bytes]:
    """Facts (with their events' Kafka arrival times) grouped into one message per partition.

    Order within a partition is kept: a call's versions reach stage 2 in the order they were made.
    """
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for fact, arrived in facts:
        item = fact.fields()
        item["arrived"] = arrived
        groups[partition_for(fact.rep_id.encode(), partitions)].append(item)
    return {p: dumps({"facts": items}) for p, items in groups.items()}


def unpack(value: bytes) -> Iterator[tuple[RepFact, float | None]]:
    """The facts of one stage-2 message (an alert tick of an older worker holds none)."""
    for item in loads(value).get("facts", ()):
        yield RepFact.from_dict(item), item.get("arrived")


def record_json(state: CallState) -> bytes:
    """`call_record(state).model_dump_json()`, byte for byte, without building and validating
    the models (that took ~15 µs of stage 1's ~80 per event; a property test in
    tests/unit/aggregator/test_properties.py holds the two equal)."""
    return orjson.dumps(record_fields(state), default=_encode, option=orjson.OPT_UTC_Z)


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
