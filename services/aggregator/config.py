"""Aggregator settings (prefix CALLPULSE_)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.kit.settings import CommonSettings


class AggregatorSettings(CommonSettings):
    """Where the aggregator reads and writes (topics, partitions, time zone and KPI rules come
    from CommonSettings)."""

    KAFKA_BOOTSTRAP: str = "127.0.0.1:19092"
    """Always Kafka: the aggregator has no embedded mode."""
    APP_ID: str = "callpulse-aggregator"
    WEB_PORT: int = 6066
    WEB_HOST: str = "127.0.0.1"
    # The worker's own directory: with the rocksdb store its tables live here, so two workers
    # on one host need two directories (RocksDB locks each database), and a restart is fast
    # only when it finds its directory again (Kubernetes: the StatefulSet's volume).
    DATA_DIR: str = ".callpulse/aggregator"
    AGGREGATOR_STORE: Literal["rocksdb", "memory"] = "rocksdb"
    """Where the worker keeps its tables: rocksdb (the default since 2026-12-04), on disk under
    DATA_DIR (one database per partition), so a restart replays only the changelog written
    since the worker's last commit and the survivor of a worker's death takes over from its
    standby copy; memory, replayed whole from the changelogs at every start and failover. With
    a month of a 10,000-rep floor and the 8-s session timeout (make bench, session 7): failover
    8.4 s against memory's 171 s, restart ready 14.0 s against 216 s, peak RSS 363 MiB against
    1,158 MiB (docs/decisions/state-store.md has the soaks that made it the default)."""
    STANDBY_REPLICAS: int = 1
    """Workers that keep a warm copy of each partition's tables (rocksdb store only; memory
    keeps none), so the survivor of a worker's death takes its partitions over without a
    replay. One is enough for two workers; each copy costs disk, and a share of the worker's
    one block cache, not its Python memory."""
    SESSION_TIMEOUT_SECONDS: float = 8.0
    """How soon the group notices a dead worker and moves its partitions: the floor of a
    failover's time (docs/decisions/state-store.md). 8 s since 2026-12-04 (30 s before): a
    failover within 15 s needs it. A worker whose event loop is held longer is dropped from the
    group; the brokers' `group.min.session.timeout.ms` (6 s by default) must allow it.
    Heartbeats go every third of it (3 s at most); a worker that has had none answered for it
    less 1.5 heartbeats writes nothing until one is, and stops if it was dropped (fence.py)."""
    PRODUCER_LINGER_MS: int = 10
    FETCH_MAX_WAIT_MS: int = Field(default=100, ge=1, le=1500)
    """The longest the broker may hold one of the worker's fetches waiting for new records
    (Faust fixes 1,500 ms). aiokafka keeps one fetch in flight per broker, and leaves out of it
    the partitions whose records are still being processed: when those are done, their next
    records (stage 2's facts, sent a moment later) wait until the fetch in flight returns. At
    1,500 ms that parked stage 2 idle for ~1 s in about half of `make bench`'s drains (traced
    2026-12-06, session 21): 100 ms, alternated with 1,500 over seven drains each, gave
    5,806-6,895 events/s (0.83-0.99 of the Faust no-op) against 5,088-6,208 (0.73-0.89). An idle
    worker sends a fetch this often (10 a second at 100 ms)."""
    SNAPSHOT_INTERVAL_SECONDS: float = 0.1
    SNAPSHOT_SHARE: float = Field(default=0.05, gt=0, le=1)
    """The most of the worker's time snapshot flushes may take while it is behind (the newest
    change it applied arrived over 5 s ago): after a flush that spent t seconds building
    and publishing snapshots, the next waits t x (1 / share - 1). A worker catching up on a backlog
    so coalesces each rep's changes for longer and drains faster; one keeping up lets flushes
    take up to a third of its time, as before (a flush of a few reps takes a millisecond).
    `make bench`'s drain of 50,000 events of a 10,000-rep floor (2026-12-04, session 16,
    rocksdb, two runs each, the share applied whatever the lag): 3,554-3,667 events/s at 1/3
    (the only share until then), 3,949-4,355 at 0.1, 4,774-4,886 at 0.05."""
    ROLLING_REFRESH_SECONDS: float = 15.0
    ALERT_EVALUATION_SECONDS: float = 10.0
    STALE_SWEEP_SECONDS: float = 60.0
    """How often calls left open past MAX_CALL_SECONDS are closed and old ended calls forgotten."""
    BATCH_MAX_EVENTS: int = 1000
    """Events (stage 1) or fact packs (stage 2) taken per batch: each call and rep in a batch
    is read and saved once."""
    BATCH_SECONDS: float = 0.05
    """How long a stage-1 batch waits for more events after its first one. The next batch
    fills while one is processed and is taken as soon as the stage is free
    (`faust_compat.take_batches`); 0 takes only what has arrived. Small batches cost more CPU
    per event (each call and rep in a batch is read and saved once, and the facts' delivery is
    awaited once per batch); a worker behind fills whole batches whatever the wait. `make
    bench`, end to end at 500 events/s, quiet machine, both stages alike (2026-12-03,
    07:39-07:53, 120 probes a run): 0.1 gave p50 328 ms, p99 602 ms; 0.05 gave 249/492 and
    243/506 ms; 0.03 gave 195/476 and 204/537 ms (2026-12-02: 0.2 gave 509/759 ms, 0 fell
    behind)."""
    FACTS_BATCH_SECONDS: float = 0.05
    """The same for stage 2 (its input: a few fact packs per stage-1 batch). 0 was measured
    (`make bench`, 2026-12-03, session 10, one worker, quick runs): end to end p50 132-135 ms at
    100 events/s against 188-193 ms with 0.05, and 190-213 ms at 500 events/s against 210-331
    ms, p99 within the runs' noise (583-723 against 749-1,045 ms); but a worker catching up
    drained 2,982-3,021 events/s against 3,542 (0.40 against 0.48 of the Faust no-op): its
    stage 2 took one stage-1 batch's packs at a time."""
    PRODUCER_BATCH_BYTES: int = 256 * 1024
    """Largest record batch the worker's producer builds (snapshots are ~2-3 KB each)."""
