"""The team payload's JSON assembled from per-rep fragments, so a rep is serialised once per change.

A rep's row changes only when a new snapshot of the rep is kept (`RepView.revision`) or one of
its windows rolls over (`RepView.valid_until`), except `age_seconds`, which moves with the clock.
So each row's JSON is kept with that one value cut out, and a payload is the team's own fields
followed by the rows joined as bytes: byte for byte what `model_dump_json()` of the whole
`TeamKpisOut` gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic_core import to_json

from schemas.kpis import WindowName
from services.api.readmodel import ReadModel, RepView, age_seconds
from services.api.routes.schemas import RepKpisOut, TeamKpisOut

_AGE = b',"age_seconds":'
_NO_REPS = b'"reps":[]}'


def rep_out(view: RepView, *, hourly: bool = True) -> RepKpisOut:
    """The response row of a rep the read model holds (without its hourly profile if asked)."""
    snap = view.snapshot
    return RepKpisOut(
        **view.kpis.model_dump(),
        rep_id=snap.rep_id,
        rep_name=snap.rep_name,
        team_id=snap.team_id,
        timezone=snap.timezone,
        as_of=snap.as_of,
        lag_seconds=view.lag_seconds,
        age_seconds=view.age_seconds,
        status=snap.status,
        status_since=snap.status_since,
        targets=view.targets,
        hourly=snap.hourly if hourly else [],
    )


@dataclass(frozen=True, slots=True)
class RowJson:
    """One rep row's JSON around its `age_seconds` value, for one revision of the rep."""

    revision: int
    since: datetime
    until: datetime
    as_of: datetime
    head: bytes
    tail: bytes

    @classmethod
    def of(cls, view: RepView, *, hourly: bool, now: datetime) -> RowJson:
        """The row of `view`, good for its revision from `now` until `view.valid_until`."""
        head, tail = cut_age(rep_out(view, hourly=hourly).model_dump_json().encode())
        return cls(view.revision, now, view.valid_until, view.snapshot.as_of, head, tail)

    def serves(self, revision: int | None, now: datetime) -> bool:
        """True when this is the row of that revision of the rep at `now`, but for its age."""
        return self.revision == revision and self.since <= now < self.until

    def render(self, now: datetime) -> bytes:
        """The row's JSON at `now`."""
        return self.head + to_json(age_seconds(self.as_of, now)) + self.tail


def cut_age(row: bytes) -> tuple[bytes, bytes]:
    """`row` (a RepKpisOut's JSON) split around the value of its `age_seconds`.

    `,"age_seconds":` cannot occur inside a JSON string (a quote there is escaped), and the
    value, a number or null, ends at the next comma (`status` always follows).
    """
    start = row.index(_AGE) + len(_AGE)
    return row[:start], row[row.index(b",", start) :]


def with_reps(team: TeamKpisOut, rows: list[bytes]) -> bytes:
    """The JSON of `team` (dumped with no reps) with `rows` as its `reps` array."""
    body = team.model_dump_json().encode()
    if team.reps or not body.endswith(_NO_REPS):
        raise ValueError("the team must come without reps, `reps` last")
    return body[: -len(b"[]}")] + b"[" + b",".join(rows) + b"]}"


@dataclass
class RowCache:
    """Rep rows' JSON by rep, window and hourly flag; a row is rebuilt only when it changed."""

    readmodel: ReadModel
    max_entries: int = 200_000
    _rows: dict[tuple[str, WindowName, bool], RowJson] = field(default_factory=dict)

    def row(self, rep_id: str, window: WindowName, *, hourly: bool, now: datetime) -> bytes:
        """The JSON of `rep_out(view, hourly=hourly)` of a rep the read model holds, at `now`."""
        key = (rep_id, window, hourly)
        held = self._rows.get(key)
        if held is None or not held.serves(self.readmodel.revision(rep_id), now):
            view = self.readmodel.rep(rep_id, window, now)
            if view is None:
                raise KeyError(rep_id)
            held = RowJson.of(view, hourly=hourly, now=now)
            if len(self._rows) >= self.max_entries:
                self._rows.clear()  # reps that left are never asked for again
            self._rows[key] = held
        return held.render(now)
