"""Write (or `--check`) the JSON Schema files under schemas/json/ from the pydantic models."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from schemas.alerts import Alert
from schemas.calls import CallRecord
from schemas.coaching import Digest, DigestSettings, RepScorecard
from schemas.competitions import Announcement, Competition, CompetitionIn, Result, Standings
from schemas.events import CallEvent
from schemas.kpis import RepSnapshot
from schemas.roster import RosterRecord

OUT = Path(__file__).parent / "json"
MODELS: dict[str, Any] = {
    "call-event.v1.json": CallEvent,
    "rep-snapshot.json": RepSnapshot,
    "call-record.json": CallRecord,
    "roster-record.json": RosterRecord,
    "alert.json": Alert,
    "competition-in.json": CompetitionIn,
    "competition.json": Competition,
    "competition-standings.json": Standings,
    "competition-result.json": Result,
    "competition-announcement.json": Announcement,
    "coaching-scorecard.json": RepScorecard,
    "coaching-digest.json": Digest,
    "coaching-digest-settings.json": DigestSettings,
}


def render() -> dict[str, str]:
    """File name -> JSON Schema text, for every contract model."""
    out = {}
    for name, model in MODELS.items():
        schema = TypeAdapter(model).json_schema(by_alias=True)
        schema["$id"] = f"https://callpulse.dev/schemas/{name}"
        out[name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def main(argv: list[str]) -> int:
    """Generate, or with --check exit 1 when a committed file is stale."""
    stale = []
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        path = OUT / name
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        sys.stderr.write(f"stale JSON Schema: {', '.join(stale)}; run `make schemas`\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
