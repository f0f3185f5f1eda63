"""How the long-running services use CPython's cyclic garbage collector.

What start-up builds (modules, the app, schemas, clients) lives as long as the process, and
every full collection would walk it again: tens of milliseconds a collection, seen as p99
latency in ingest and a fifth of its single-event throughput under load. `freeze()` moves it
out of every later collection.

The thresholds stay CPython's, but for the aggregator worker (`WORKER_THRESHOLDS`).

- 2026-12-03: young collections every 50,000 allocations instead of 700 were tried. In-process
  the aggregator core spent ~0.15 s of ~4 s collecting instead of ~0.7 s, but the worker
  drained only ~3 % faster, and its young collections took 120-270 ms each under end-to-end
  load. Left out.
- 2026-12-05: timed with `gc.callbacks` over the aggregator bench's drain (50,000 events), CPython's
  thresholds spent ~1.7 s of the worker's ~19 s collecting, 1.1 s of it in ~20 full
  collections of ~55 ms each (every young object the drain keeps, decoded reps and calls,
  is walked again by each). `WORKER_THRESHOLDS` spent ~0.5 s, in 3-5 full collections.
"""

from __future__ import annotations

import gc

WORKER_THRESHOLDS = (5_000, 20, 100)
"""The aggregator worker's: a young collection every 5,000 allocations (~1,000 events), a full
one after 100 middle ones, not 10. Its heap is mostly long-lived state, not cyclic garbage."""


def freeze(thresholds: tuple[int, int, int] | None = None) -> None:
    """Collect once, then keep every object alive now out of later collections (call when
    start-up is done: what it built lives as long as the process); set `thresholds` if given."""
    gc.collect()
    gc.freeze()
    if thresholds is not None:
        gc.set_threshold(*thresholds)
