"""How the long-running services use CPython's cyclic garbage collector.

What start-up builds (modules, the app, schemas, clients) lives as long as the process, and
every full collection would walk it again: tens of milliseconds a collection, seen as p99
latency in ingest and a fifth of its single-event throughput under load. `freeze()` moves it
out of every later collection.

The thresholds stay CPython's: with young collections every 50,000 allocations instead of
700 (tried on 2026-12-03), the aggregator core in-process spent less time collecting, but end
to end at 500 events/s the worker's young collections took 120-270 ms each and the p99 went
from ~1 s to ~4.5 s (`python -m bench.run --only e2e`, two runs each).
"""

from __future__ import annotations

import gc


def freeze() -> None:
    """Collect once, then keep every object alive now out of later collections (call when
    start-up is done: what it built lives as long as the process)."""
    gc.collect()
    gc.freeze()
