"""Baseline: Faust's own ceiling on this machine, a worker whose agent does nothing.

`python -m bench.faust_noop worker -l warn` with CALLPULSE_BENCH_TOPIC, _COUNT, _APP_ID set.
Same Faust, uvloop, raw serializers and poll size as the aggregator; the agent only counts. It
prints one JSON line {"events": n, "seconds": s} (first event to the n-th) and exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import faust
import uvloop

from services.aggregator.config import AggregatorSettings

TOPIC = os.environ.get("CALLPULSE_BENCH_TOPIC", "bench.noop")
COUNT = int(os.environ.get("CALLPULSE_BENCH_COUNT", "1"))

app = faust.App(
    os.environ.get("CALLPULSE_BENCH_APP_ID", "bench-faust-noop"),
    broker=f"kafka://{os.environ.get('CALLPULSE_KAFKA_BOOTSTRAP', '127.0.0.1:19092')}",
    store="memory://",
    key_serializer="raw",
    value_serializer="raw",
    consumer_auto_offset_reset="earliest",
    broker_max_poll_records=AggregatorSettings().BATCH_MAX_EVENTS,
    web_enabled=False,
    datadir=os.environ.get("CALLPULSE_DATA_DIR", ".callpulse/faust-noop"),
)
topic = app.topic(TOPIC, key_type=bytes, value_type=bytes)


@app.agent(topic)
async def count(stream: Any) -> None:
    """Count the events; report and leave at COUNT."""
    seen = 0
    began = 0.0
    async for _ in stream:
        if seen == 0:
            began = time.monotonic()
        seen += 1
        if seen >= COUNT:
            print(json.dumps({"events": seen, "seconds": time.monotonic() - began}), flush=True)
            os._exit(0)


if __name__ == "__main__":
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app.main()
