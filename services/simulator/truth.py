"""Ground truth: the aggregator's reference fold of the de-duplicated log, as a JSON file."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from schemas.events import CallEvent, event_to_json
from services.aggregator.domain.reference import fold
from services.simulator.faults import dedupe

Truth = dict[str, dict[str, dict[str, Any]]]


def ground_truth(
    events: Iterable[CallEvent],
    now: datetime,
    timezones: Mapping[str, str],
    default_timezone: str = "UTC",
) -> Truth:
    """KPIs per rep and window at `now` (rep -> window -> KPIs), duplicates counted once."""
    folded = fold(dedupe(events), now, timezones, default_timezone=default_timezone)
    return {
        rep: {str(window): kpis for window, kpis in by_window.items()}
        for rep, by_window in folded.items()
    }


def write_truth(path: Path, truth: Truth) -> None:
    """Write the truth as indented JSON, reps sorted."""
    path.write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n")


def read_truth(path: Path) -> Truth:
    """Read a truth file written by `write_truth`."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object rep -> window -> KPIs")
    return data


def write_log(path: Path, events: Iterable[CallEvent]) -> int:
    """Write events as NDJSON (the generic ingest format); returns how many."""
    count = 0
    with path.open("wb") as out:
        for event in events:
            out.write(event_to_json(event) + b"\n")
            count += 1
    return count
