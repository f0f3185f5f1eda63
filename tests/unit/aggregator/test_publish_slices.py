"""The Faust driver's slice loop: a slice the core builds is a slice that goes out.

Soak run 29 of 2026-12-02 (broker restart): three rep-windows stayed one count too high and
never converged. The loop used to build the next slice of a refresh and only then see that a
rebalance had interrupted it; the core had recorded those reps as published, so no later
refresh sent them, and the topic kept their older, higher snapshots.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from services.aggregator.core import Publication, Slices
from services.aggregator.worker import publish_while
from tests.unit.aggregator.events import ev
from tests.unit.aggregator.floor import Floor
from tests.unit.aggregator.test_core import T0, published


def test_no_slice_is_built_once_the_sweep_is_interrupted() -> None:
    built: list[int] = []
    sent: list[Publication] = []

    def parts() -> Slices:
        for n in range(3):
            built.append(n)
            yield Publication()

    async def publish(part: Publication) -> None:
        sent.append(part)

    done = asyncio.run(publish_while(parts(), lambda: not sent, publish))
    assert (done, built, len(sent)) == (False, [0], 1)


def test_an_uninterrupted_sweep_publishes_every_slice() -> None:
    sent: list[Publication] = []

    async def publish(part: Publication) -> None:
        sent.append(part)

    told: list[float | None] = []

    def parts() -> Slices:
        for _ in range(2):
            told.append((yield Publication()))

    assert asyncio.run(publish_while(parts(), lambda: True, publish)) is True
    assert len(sent) == 2
    assert all(t is not None and t >= 0 for t in told)  # how long each took to publish


def test_after_an_interrupted_sweep_the_next_refresh_publishes_every_held_rep() -> None:
    """What the driver does when `publish_while` is interrupted: `forget()` (the publication
    memory), so a snapshot built and not sent goes out at the next refresh."""
    floor = Floor()
    floor.apply(ev("call.started", "c1", T0, rep_id="r1"), T0)
    assert published(floor, T0) == ["r1"]
    later = T0 + timedelta(minutes=15)  # c1 leaves the 15-minute window
    dropped = floor.core.reps.refresh(later)  # built, then the rebalance: never sent
    assert [snap.rep_id for snap in dropped.snapshots] == ["r1"]
    assert published(floor, later, refresh=True) == []  # the core believes it went out
    floor.core.reps.forget()
    assert published(floor, later, refresh=True) == ["r1"]
