"""Roster service: store teams, reps, targets and alert rules, publish them, and cache them for
reads."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.roster import AlertRules, Rep, RosterRecord, Target, Targets, Team
from services.api.db import repository
from services.api.publisher import PublishFailed, RosterPublisher
from services.kit.problems import Problem

log = structlog.get_logger(__name__)


def merge_targets(team: list[Target], rep: list[Target]) -> list[Target]:
    """A rep's effective targets: the team's, overridden by the rep's per KPI and window."""
    merged = {(t.kpi, t.window): t for t in team}
    merged.update({(t.kpi, t.window): t for t in rep})
    return list(merged.values())


@dataclass(frozen=True, slots=True)
class TeamRoster:
    """A team as the roster knows it: its row, reps and their effective targets."""

    team: Team | None
    reps: list[Rep]
    targets: dict[str, list[Target]]


@dataclass(frozen=True, slots=True)
class RepRoster:
    """A rep as the roster knows it, with its team and effective targets."""

    rep: Rep
    team: Team | None
    targets: list[Target]


@dataclass
class RosterCache:
    """Roster reads for the KPI routes, cached for `ttl` seconds to keep the database off the
    hot path; a change made through this replica is visible at once, others' within `ttl`."""

    sessions: async_sessionmaker[AsyncSession]
    ttl: float = 10.0
    max_entries: int = 10_000
    _teams: dict[str, tuple[float, TeamRoster]] = field(default_factory=dict)
    _reps: dict[str, tuple[float, RepRoster | None]] = field(default_factory=dict)

    async def team(self, team_id: str) -> TeamRoster:
        """A team's roster (empty when the roster does not know it)."""
        cached = self._teams.get(team_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with self.sessions() as session:
            team = await repository.get_team(session, team_id)
            reps = await repository.reps_of_team(session, team_id)
            team_targets = (await repository.targets_of(session, "team", [team_id])).get(team_id)
            rep_targets = await repository.targets_of(session, "rep", [r.rep_id for r in reps])
        found = TeamRoster(
            team,
            reps,
            {
                r.rep_id: merge_targets(team_targets or [], rep_targets.get(r.rep_id, []))
                for r in reps
            },
        )
        self._bound()
        self._teams[team_id] = (time.monotonic() + self.ttl, found)
        return found

    async def rep(self, rep_id: str) -> RepRoster | None:
        """A rep's roster entry, or None when the roster does not know it."""
        cached = self._reps.get(rep_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with self.sessions() as session:
            rep = await repository.get_rep(session, rep_id)
            found = None
            if rep is not None:
                team = await repository.get_team(session, rep.team_id) if rep.team_id else None
                team_targets = await repository.targets_of(session, "team", [rep.team_id or ""])
                rep_targets = await repository.targets_of(session, "rep", [rep_id])
                targets = merge_targets(
                    team_targets.get(rep.team_id or "", []), rep_targets.get(rep_id, [])
                )
                found = RepRoster(rep, team, targets)
        self._bound()
        self._reps[rep_id] = (time.monotonic() + self.ttl, found)
        return found

    def _bound(self) -> None:
        # Lookups of made-up ids are cached too; never let them grow without limit.
        if len(self._teams) + len(self._reps) >= self.max_entries:
            self.invalidate()

    def invalidate(self) -> None:
        """Forget everything (after a change through this replica)."""
        self._teams.clear()
        self._reps.clear()


@dataclass
class RosterService:
    """Stores a roster change, then publishes it so the KPI computation follows it.

    The database is the source of truth: when publishing fails the change is kept and the
    client gets a 503; repeating the same PUT publishes it (records are idempotent by key).
    """

    sessions: async_sessionmaker[AsyncSession]
    publisher: RosterPublisher
    cache: RosterCache

    async def put_team(self, team: Team) -> Team:
        """Create or replace a team."""
        async with self.sessions.begin() as session:
            await repository.upsert_team(session, team)
        await self._publish(RosterRecord(team=team))
        return team

    async def put_rep(self, rep: Rep) -> Rep:
        """Create or replace a rep."""
        async with self.sessions.begin() as session:
            await repository.upsert_rep(session, rep)
        await self._publish(RosterRecord(rep=rep))
        return rep

    async def put_targets(self, targets: Targets) -> Targets:
        """Replace the targets of a team or a rep."""
        async with self.sessions.begin() as session:
            await repository.set_targets(session, targets)
        await self._publish(RosterRecord(targets=targets))
        return targets

    async def put_alert_rules(self, rules: AlertRules) -> AlertRules:
        """Replace the alert rules of a team or a rep."""
        async with self.sessions.begin() as session:
            await repository.set_alert_rules(session, rules)
        await self._publish(RosterRecord(alert_rules=rules))
        return rules

    async def _publish(self, record: RosterRecord) -> None:
        self.cache.invalidate()
        try:
            await self.publisher.publish(record)
        except PublishFailed as exc:
            raise Problem(
                503,
                "Roster change not published",
                "The change is stored but could not be published; repeat the request.",
                headers={"Retry-After": "5"},
            ) from exc
        log.info("roster_published", key=record.key())
