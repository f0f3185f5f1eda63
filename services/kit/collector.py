"""How the long-running services use CPython's cyclic garbage collector.

What they keep (a worker's decoded reps and calls, the API's read model, clients, modules) is
freed by reference counting; the cyclic collector only walks it. With CPython's default
thresholds a young collection ran every 700 net allocations, a few per event in the
aggregator's core, and each full collection walked every live object: in-process, 20,000
events of a 10,000-rep floor spent ~0.7 s of ~4 s in the collector, with full collections of
40-100 ms (tail latency on a wallboard). `tune()` lets the young generation grow to
`YOUNG_THRESHOLD` objects first (cycles still go, a little later); `freeze()` moves what
start-up built out of every later collection.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
"""Net allocations of container objects between two young collections (CPython: 700)."""


def tune() -> None:
    """Collect the young generation every `YOUNG_THRESHOLD` allocations (older ones as before)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def freeze() -> None:
    """Collect once, then keep every object alive now out of later collections (call when
    start-up is done: what it built lives as long as the process)."""
    gc.collect()
    gc.freeze()
