"""The competition service: definitions, live standings, frozen results, corrections and the
moments announced.

Live standings are a read model of the call history: each competition's running period holds
the counter totals of its participants, summed from the stored call facts (`call_facts`, the
same rows the reports sum). The history keeps one version of each call, the newest, so a
duplicate, reordered or late version replaces the call's credit instead of adding to it; after
each batch of stored call records only the participants it touched are summed again. Replicas
of the API share the consumer group of call records, so each also sums every board again every
`refresh_seconds`: a replica that did not store a batch catches up within that time.

A period is frozen `freeze_grace_seconds` after it ends (records of its last moments are still
on their way), once, whichever replica gets there first. A frozen period is scored again after
call records whose facts land in it (however late), and those that ended within
`correction_horizon` also on every refresh round (for records another replica stored); a
changed outcome moves the result to its next revision with a correction.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.calls import CallRecord
from schemas.competitions import (
    Announcement,
    AnnouncementKind,
    Competition,
    CompetitionIn,
    Correction,
    Result,
    StandingRow,
    Standings,
)
from services.api.competitions import repository, scoring
from services.api.competitions.announce import Announcer
from services.api.competitions.messages import texts
from services.api.competitions.periods import Schedule, Span
from services.api.db.models import CompetitionResultRow, CompetitionRow

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
TimezoneOf = Callable[[str], Awaitable[str | None]]
Totals = dict[str, dict[str, int | float]]
SSE_ROWS = 100
"""Rows of a `competition` SSE event (the full list is at `/standings`)."""
LAST_HOUR = timedelta(hours=1)
FULL_REFRESH_SECONDS = 300.0
"""A full sum of a running period this often: a call that moved to another rep leaves its old
rep's credit, which no stored record of that rep points to."""
FREEZES_PER_ROUND = 5
"""Most periods one board freezes per round of `tick`."""
PARTIAL_MAX = 500
"""Most participants summed again by name; more and the whole period is summed."""
LOOK_BACK = timedelta(seconds=60)
"""Margin on the history's `updated_at` for the replicas' clock skew and commits in flight."""


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


def competition_of(row: CompetitionRow) -> Competition:
    """The Competition of a stored row."""
    return Competition.model_validate(
        {
            **row.definition,
            "id": row.id,
            "timezone": row.timezone,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }
    )


def result_of(row: CompetitionResultRow, zone: Any) -> Result:
    """The Result of a stored row."""
    span = Span(row.period_key, row.period_start, row.period_end)
    return Result(
        competition_id=row.competition_id,
        period=span.out(zone),
        frozen_at=row.frozen_at,
        revision=row.revision,
        winners=list(row.winners),
        rows=[StandingRow.model_validate(r) for r in row.rows],
        corrections=[Correction.model_validate(c) for c in row.corrections],
    )


@dataclass
class Board:
    """One competition's running period and its participants' totals."""

    competition: Competition
    schedule: Schedule
    span: Span | None = None
    totals: Totals = field(default_factory=dict)
    standings: Standings | None = None
    json: dict[tuple[int, int], bytes] = field(default_factory=dict)
    refreshed: float = 0.0
    full_at: float = 0.0
    looked: datetime | None = None
    announced_leaders: list[str] | None = None
    frozen: set[str] = field(default_factory=set)

    @property
    def by(self) -> repository.By:
        """Whether participants are reps or teams."""
        return "team" if self.competition.participants.mode == "teams" else "rep"

    def participant_of(self, record: CallRecord) -> str | None:
        """The participant a call record's credit goes to, if it takes part."""
        p = self.competition.participants
        if self.by == "team":
            return record.team_id if record.team_id in p.team_ids else None
        if record.rep_id is not None and (
            record.rep_id in p.rep_ids or record.team_id in p.team_ids
        ):
            return record.rep_id
        return None


class CompetitionSubscription:
    """One SSE client's bounded queue of standings; None in it means the client was dropped."""

    def __init__(self, team_id: str | None, maxsize: int) -> None:
        self.team_id = team_id
        self.queue: asyncio.Queue[Standings | None] = asyncio.Queue(maxsize)


class CompetitionService:
    """Competitions of one API replica (see the module docstring)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        announcer: Announcer,
        *,
        default_timezone: str = "UTC",
        timezone_of: TimezoneOf | None = None,
        clock: Clock = utcnow,
        tick_seconds: float = 1.0,
        refresh_seconds: float = 10.0,
        freeze_grace_seconds: float = 30.0,
        correction_horizon: timedelta = timedelta(days=2),
    ) -> None:
        self.sessions, self.announcer = sessions, announcer
        self.default_timezone, self.timezone_of = default_timezone, timezone_of
        self.clock = clock
        """The time (tests may replace it)."""
        self.tick_seconds, self.refresh_seconds = tick_seconds, refresh_seconds
        self.freeze_grace = timedelta(seconds=freeze_grace_seconds)
        self.correction_horizon = correction_horizon
        self.boards: dict[int, Board] = {}
        self._subscribers: list[CompetitionSubscription] = []
        self._lock = asyncio.Lock()
        self._loaded = False

    # --- definitions ---------------------------------------------------------------------------

    async def _timezone(self, body: CompetitionIn) -> str:
        if body.timezone is not None:
            return body.timezone
        if body.participants.team_ids and self.timezone_of is not None:
            found = await self.timezone_of(body.participants.team_ids[0])
            if found is not None:
                return found
        return self.default_timezone

    async def create(self, body: CompetitionIn) -> Competition:
        """Store a new competition and start its board."""
        timezone, now = await self._timezone(body), self.clock()
        definition = body.model_dump(mode="json", exclude={"timezone"})
        async with self.sessions.begin() as session:
            row = await repository.add(session, body.name, timezone, definition, now)
            competition = competition_of(row)
        log.info("competition_created", competition_id=competition.id, name=body.name)
        async with self._lock:
            await self._adopt(competition)
        return competition

    async def replace(self, competition_id: int, body: CompetitionIn) -> Competition | None:
        """Replace a competition's definition; None if it is unknown."""
        timezone, now = await self._timezone(body), self.clock()
        definition = body.model_dump(mode="json", exclude={"timezone"})
        async with self.sessions.begin() as session:
            if not await repository.replace(
                session, competition_id, body.name, timezone, definition, now
            ):
                return None
            row = await repository.get(session, competition_id)
            assert row is not None  # just updated, in this transaction
            competition = competition_of(row)
        async with self._lock:
            self.boards.pop(competition_id, None)
            await self._adopt(competition)
        return competition

    async def delete(self, competition_id: int) -> bool:
        """Delete a competition, its results and announcements."""
        async with self.sessions.begin() as session:
            deleted = await repository.remove(session, competition_id)
        async with self._lock:  # after a round that read the definitions before the delete
            self.boards.pop(competition_id, None)
        return deleted

    async def get(self, competition_id: int) -> Competition | None:
        """One competition."""
        await self._ensure_loaded()
        board = self.boards.get(competition_id)
        if board is not None:
            return board.competition
        async with self.sessions() as session:
            row = await repository.get(session, competition_id)
        return None if row is None else competition_of(row)

    async def all(self, team_id: str | None = None) -> list[Competition]:
        """Every competition, or those of one team."""
        async with self.sessions() as session:
            rows = await repository.all_rows(session)
        found = [competition_of(row) for row in rows]
        if team_id is None:
            return found
        return [c for c in found if team_id in c.participants.team_ids]

    # --- standings -----------------------------------------------------------------------------

    async def standings(self, competition_id: int) -> Standings | None:
        """The live standings of a competition's running period; None if it is unknown."""
        board = await self._current(competition_id)
        return None if board is None else board.standings

    async def standings_json(
        self, competition_id: int, offset: int = 0, limit: int = 100
    ) -> bytes | None:
        """A page of the same, serialised once per change (wallboards poll it)."""
        board = await self._current(competition_id)
        if board is None or board.standings is None:
            return None
        page = board.json.get((offset, limit))
        if page is None:
            if len(board.json) > 64:
                board.json.clear()
            rows = board.standings.rows[offset : offset + limit]
            page = board.standings.model_copy(update={"rows": rows}).model_dump_json().encode()
            board.json[(offset, limit)] = page
        return page

    async def _current(self, competition_id: int) -> Board | None:
        await self._ensure_loaded()
        board = self.boards.get(competition_id)
        if board is None:
            competition = await self.get(competition_id)
            if competition is None:
                return None
            async with self._lock:
                board = await self._adopt(competition)
        span = board.schedule.at(self.clock())
        if board.standings is None or span != board.span:
            async with self._lock:
                await self._refresh(board)
        return board

    async def results(
        self,
        competition_id: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[Result] | None:
        """Frozen results, newest first; None if the competition is unknown."""
        competition = await self.get(competition_id)
        if competition is None:
            return None
        zone = Schedule.of(competition.period, competition.timezone, competition.created_at).zone
        async with self.sessions() as session:
            rows = await repository.results(
                session, competition_id, since=since, until=until, limit=limit
            )
        return [result_of(row, zone) for row in rows]

    async def announcements(self, competition_id: int) -> list[dict[str, Any]]:
        """What was announced for a competition, with delivery state, oldest first."""
        async with self.sessions() as session:
            rows = await repository.announcements(session, competition_id)
        return [
            {**row.payload, "status": row.status, "attempts": row.attempts, "error": row.last_error}
            for row in rows
        ]

    # --- live updates --------------------------------------------------------------------------

    async def on_stored(self, records: Sequence[CallRecord]) -> None:
        """Call records were stored: sum the touched participants again, and check the
        ended periods their facts fall in. Never raises (history is stored already)."""
        try:
            await self._ensure_loaded()
            async with self._lock:
                for board in list(self.boards.values()):
                    await self._apply(board, records)
        except Exception as exc:  # a failure here must not fail storing the history
            log.warning("competition_update_failed", error=repr(exc))

    async def _apply(self, board: Board, records: Sequence[CallRecord]) -> None:
        touched = {p for r in records if (p := board.participant_of(r)) is not None}
        if not touched:
            return
        span = board.schedule.at(self.clock())
        if span != board.span or board.standings is None:
            await self._refresh(board)
        elif span is not None:
            async with self.sessions() as session:
                fresh = await self._totals(session, board, span, only=sorted(touched))
            for participant in touched:
                board.totals.pop(participant, None)
            board.totals.update(fresh)
            await self._rank(board)
        # However late: a frozen period that one of these facts lands in is scored again.
        closed: dict[str, Span] = {}
        for record in records:
            if board.participant_of(record) is None:
                continue
            for fact in record.facts:
                period = board.schedule.at(fact.at)
                if period is not None and period.key in board.frozen:
                    closed[period.key] = period
        for period in closed.values():
            await self._recheck(board, period)

    async def _totals(
        self, session: AsyncSession, board: Board, span: Span, only: Sequence[str] | None = None
    ) -> Totals:
        p = board.competition.participants
        return await repository.totals(
            session,
            span.start,
            span.end,
            by=board.by,
            rep_ids=p.rep_ids,
            team_ids=p.team_ids,
            only=only,
        )

    async def _adopt(self, competition: Competition) -> Board:
        board = Board(
            competition,
            Schedule.of(competition.period, competition.timezone, competition.created_at),
        )
        self.boards[competition.id] = board
        async with self.sessions() as session:
            frozen = await repository.results(session, competition.id, limit=10_000)
        board.frozen = {row.period_key for row in frozen}
        await self._refresh(board)
        return board

    async def _refresh(self, board: Board) -> None:
        """Sum the running period's totals again from the history: all of them when the period
        changed or a full refresh is due, else only the participants of calls stored since the
        last look (by any replica), so a quiet refresh costs one indexed query."""
        span = board.schedule.at(self.clock())
        changed_period = span != board.span
        board.span = span
        looked = utcnow()  # history rows carry the writers' wall clock, not `self.clock`
        full = (
            changed_period
            or board.standings is None
            or board.looked is None
            or time.monotonic() - board.full_at >= FULL_REFRESH_SECONDS
        )
        totals: Totals = {}
        if span is not None and full:
            async with self.sessions() as session:
                totals = await self._totals(session, board, span)
            board.full_at = time.monotonic()
        elif span is not None and board.looked is not None:
            totals = await self._changed_totals(board, span, board.looked - LOOK_BACK)
        board.looked, board.refreshed = looked, time.monotonic()
        if not changed_period and totals == board.totals and board.standings is not None:
            return  # nothing moved: ranking 10,000 rows again would only block the loop
        board.totals = totals
        if changed_period:
            board.announced_leaders = None
        await self._rank(board)
        if changed_period and span is not None:
            await self._announce(board, "start", span, f"start:{span.key}")

    async def _changed_totals(self, board: Board, span: Span, since: datetime) -> Totals:
        p = board.competition.participants
        async with self.sessions() as session:
            who = await repository.touched(
                session, since, by=board.by, rep_ids=p.rep_ids, team_ids=p.team_ids
            )
            if not who:
                return board.totals
            # Many at once (a bulk load): one sum of all beats a long IN list.
            only = None if len(who) > PARTIAL_MAX else who
            fresh = await self._totals(session, board, span, only=only)
            if only is None:
                return fresh
        totals = {k: v for k, v in board.totals.items() if k not in set(who)}
        totals.update(fresh)
        return totals

    def _always(self, board: Board) -> list[str]:
        p = board.competition.participants
        return list(p.team_ids if board.by == "team" else p.rep_ids)

    async def _rank(self, board: Board) -> None:
        """Rank the totals; publish and announce what changed."""
        c = board.competition
        rows = []
        if board.span is not None:
            # Ranking 10,000 participants takes a few hundred ms: off the event loop, so
            # standings reads keep being answered meanwhile (the lock keeps totals still).
            rows = await asyncio.to_thread(scoring.rank, c, board.totals, self._always(board))
        standings = Standings(
            competition_id=c.id,
            name=c.name,
            period=board.span.out(board.schedule.zone) if board.span else None,
            as_of=self.clock(),
            leaders=scoring.leaders(rows),
            participants=len(rows),
            rows=rows,
        )
        previous = board.standings
        if (
            previous is not None
            and previous.rows == standings.rows
            and previous.period == standings.period
        ):
            return
        board.standings, board.json = standings, {}
        self._publish(board, standings)
        await self._lead_change(board, standings)

    async def _lead_change(self, board: Board, standings: Standings) -> None:
        span, leaders = board.span, standings.leaders
        if span is None or not leaders:
            return
        held = board.announced_leaders
        board.announced_leaders = leaders
        if held is None or held == leaders:
            return
        slot = int(self.clock().timestamp() // (board.competition.lead_change_minutes * 60))
        await self._announce(board, "lead_change", span, f"lead:{span.key}:{slot}")

    # --- the clock -----------------------------------------------------------------------------

    async def tick(self) -> None:
        """One round: pick up definitions changed elsewhere, roll periods over, refresh
        boards due, announce the last hour, freeze ended periods and check recent ones."""
        await self._ensure_loaded(force=True)
        now = self.clock()
        async with self._lock:
            for board in list(self.boards.values()):
                try:
                    await self._round(board, now)
                except Exception as exc:  # one board's failure must not stop the others
                    log.warning(
                        "competition_round_failed",
                        competition_id=board.competition.id,
                        error=repr(exc),
                    )

    async def _round(self, board: Board, now: datetime) -> None:
        span = board.schedule.at(now)
        due = time.monotonic() - board.refreshed >= self.refresh_seconds
        if span != board.span or due:
            await self._refresh(board)
        if span is not None and span.end - now <= LAST_HOUR < span.end - span.start:
            await self._announce(board, "last_hour", span, f"last_hour:{span.key}")
        await self._freeze_ended(board, now, recheck=due)

    async def _freeze_ended(self, board: Board, now: datetime, *, recheck: bool) -> None:
        """Freeze ended periods, a few per round (a recurring competition that starts far in
        the past catches up over several rounds instead of holding the lock for all of them);
        re-check the recent ones."""
        horizon, frozen = now - self.correction_horizon, 0
        for span in board.schedule.ended(now - self.freeze_grace):
            if span.key not in board.frozen:
                if frozen >= FREEZES_PER_ROUND:
                    break
                await self._freeze(board, span, announce=span.end > horizon)
                frozen += 1
            elif recheck and span.end > horizon:
                await self._recheck(board, span)

    async def _score(self, board: Board, span: Span) -> list[StandingRow]:
        async with self.sessions() as session:
            totals = await self._totals(session, board, span)
        return await asyncio.to_thread(scoring.rank, board.competition, totals, self._always(board))

    async def _freeze(self, board: Board, span: Span, *, announce: bool = True) -> None:
        rows, now = await self._score(board, span), self.clock()
        winners = scoring.leaders(rows)
        async with self.sessions.begin() as session:
            froze = await repository.freeze(
                session,
                {
                    "competition_id": board.competition.id,
                    "period_key": span.key,
                    "period_start": span.start,
                    "period_end": span.end,
                    "frozen_at": now,
                    "revision": 1,
                    "winners": winners,
                    "rows": [r.model_dump(mode="json") for r in rows],
                    "corrections": [],
                    "updated_at": now,
                },
            )
        board.frozen.add(span.key)
        if froze:
            log.info("competition_frozen", competition_id=board.competition.id, period=span.key)
            if announce:  # a period long over (a catch-up) is recorded, not announced
                await self._announce(board, "winners", span, f"winners:{span.key}", rows=rows)

    async def _recheck(self, board: Board, span: Span) -> None:
        """Score an ended period again; record a correction if its result moved."""
        rows = await self._score(board, span)
        async with self.sessions.begin() as session:
            row = await repository.result(session, board.competition.id, span.key)
            if row is None:
                return
            held = [StandingRow.model_validate(r) for r in row.rows]
            if held == rows:
                return
            winners, now, previous = scoring.leaders(rows), self.clock(), list(row.winners)
            correction = Correction(
                revision=row.revision + 1,
                corrected_at=now,
                previous_winners=previous,
                winners=winners,
                changed=_changed(held, rows),
            )
            moved = await repository.correct(
                session,
                row,
                {
                    "revision": row.revision + 1,
                    "winners": winners,
                    "rows": [r.model_dump(mode="json") for r in rows],
                    "corrections": [*row.corrections, correction.model_dump(mode="json")],
                    "updated_at": now,
                },
            )
        if moved:
            log.info(
                "competition_corrected",
                competition_id=board.competition.id,
                period=span.key,
                revision=correction.revision,
            )
            if winners != previous:
                await self._announce(
                    board,
                    "correction",
                    span,
                    f"correction:{span.key}:{correction.revision}",
                    rows=rows,
                    previous=previous,
                )

    async def _ensure_loaded(self, *, force: bool = False) -> None:
        """Adopt competitions created, changed or deleted (by any replica).

        The definitions are read under the lock: a list read before a `create` committed and
        applied after it adopted its board would delete that board (its lead changes then went
        unannounced until the next round adopted it again, with no leaders to compare)."""
        if self._loaded and not force:
            return
        async with self._lock:
            async with self.sessions() as session:
                rows = await repository.all_rows(session)
            found = {row.id: competition_of(row) for row in rows}
            for gone in set(self.boards) - set(found):
                del self.boards[gone]
            for competition_id, competition in found.items():
                board = self.boards.get(competition_id)
                if board is None or board.competition.updated_at != competition.updated_at:
                    await self._adopt(competition)
        self._loaded = True

    # --- announcements and SSE -----------------------------------------------------------------

    async def _announce(
        self,
        board: Board,
        kind: AnnouncementKind,
        span: Span,
        suffix: str,
        *,
        rows: list[StandingRow] | None = None,
        previous: list[str] | None = None,
    ) -> None:
        c = board.competition
        if not c.announce:
            return
        if rows is None:
            rows = board.standings.rows if board.standings is not None else []
        leaders = scoring.leaders(rows)
        top = rows[0].score if rows and leaders else None
        period = span.out(board.schedule.zone)
        en, zh = texts(kind, c, period, leaders, top, previous)
        announcement = Announcement(
            announcement_id=f"competition:{c.id}:{suffix}",
            kind=kind,
            competition_id=c.id,
            competition=c.name,
            period=period,
            leaders=leaders,
            message_en=en,
            message_zh=zh,
            at=self.clock(),
        )
        try:
            await self.announcer.announce(announcement, c.participants.team_ids)
        except Exception as exc:  # the database is away: the next round tries again
            log.warning("competition_announce_failed", kind=kind, error=repr(exc))

    def subscribe(self, team_id: str | None, maxsize: int = 100) -> CompetitionSubscription:
        """Standings of the competitions of one team (or all), as they change."""
        subscription = CompetitionSubscription(team_id, maxsize)
        self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: CompetitionSubscription) -> None:
        """Stop sending to a subscription."""
        with contextlib.suppress(ValueError):
            self._subscribers.remove(subscription)

    def _publish(self, board: Board, standings: Standings) -> None:
        teams = board.competition.participants.team_ids
        event = standings.model_copy(update={"rows": standings.rows[:SSE_ROWS]})
        for sub in list(self._subscribers):
            if sub.team_id is not None and teams and sub.team_id not in teams:
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.unsubscribe(sub)
                while not sub.queue.empty():
                    sub.queue.get_nowait()
                sub.queue.put_nowait(None)

    # --- running -------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CompetitionService]:
        """Run `tick` every `tick_seconds` in the background."""
        task = asyncio.create_task(self._loop(), name="competitions")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.announcer.drain()

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:  # the database may be briefly away: try again next round
                log.warning("competition_tick_failed", error=repr(exc))
            await asyncio.sleep(self.tick_seconds)


def _changed(before: Iterable[StandingRow], after: Iterable[StandingRow]) -> dict[str, list[float]]:
    old = {r.participant_id: r.score for r in before}
    new = {r.participant_id: r.score for r in after}
    return {
        pid: [old.get(pid, 0.0), new.get(pid, 0.0)]
        for pid in sorted(set(old) | set(new))
        if old.get(pid, 0.0) != new.get(pid, 0.0)
    }
