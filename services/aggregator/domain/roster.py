"""The roster as the aggregator sees it: team of a rep, time zone, shift, effective targets."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.events import CallEvent
from schemas.roster import AlertRule, Rep, RosterRecord, Target, Team
from services.aggregator.domain.rep import Context


@dataclass(slots=True)
class RosterView:
    """Latest teams, reps and targets; the roster wins over team ids carried by events."""

    default_timezone: str = "UTC"
    teams: dict[str, Team] = field(default_factory=dict)
    reps: dict[str, Rep] = field(default_factory=dict)
    team_targets: dict[str, tuple[Target, ...]] = field(default_factory=dict)
    rep_targets: dict[str, tuple[Target, ...]] = field(default_factory=dict)
    team_rules: dict[str, tuple[AlertRule, ...]] = field(default_factory=dict)
    rep_rules: dict[str, tuple[AlertRule, ...]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    """A provider's agent id (any provider) -> our rep_id, from `Rep.external_ids`."""
    _contexts: dict[tuple[str, str | None], Context] = field(default_factory=dict)
    """Contexts computed since the last roster change (one per fact made them a tenth of
    stage 2's time)."""

    def apply(self, record: RosterRecord) -> None:
        """Take one roster record (a newer record for the same key replaces the older)."""
        self._contexts.clear()
        if record.team is not None:
            self.teams[record.team.team_id] = record.team
        if record.rep is not None:
            rep = record.rep
            self.reps[rep.rep_id] = rep
            for alias in [a for a, rep_id in self.aliases.items() if rep_id == rep.rep_id]:
                del self.aliases[alias]  # ids the rep no longer has
            for external in rep.external_ids.values():
                self.aliases[external] = rep.rep_id
        if record.targets is not None:
            book = self.team_targets if record.targets.subject == "team" else self.rep_targets
            book[record.targets.subject_id] = tuple(record.targets.targets)
        if record.alert_rules is not None:
            rules = record.alert_rules
            shelf = self.team_rules if rules.subject == "team" else self.rep_rules
            shelf[rules.subject_id] = tuple(rules.rules)

    def resolve(self, event: CallEvent) -> CallEvent:
        """The event with its rep id translated when it is a provider's agent id we know."""
        rep_id = event.rep_id
        if rep_id is None or rep_id in self.reps or rep_id not in self.aliases:
            return event
        return event.model_copy(update={"rep_id": self.aliases[rep_id]})

    def context(self, rep_id: str, event_team_id: str | None) -> Context:
        """Team, time zone, shift and targets of a rep; rep targets override team ones."""
        key = (rep_id, event_team_id)
        known = self._contexts.get(key)
        if known is None:
            known = self._contexts[key] = self._context(rep_id, event_team_id)
        return known

    def _context(self, rep_id: str, event_team_id: str | None) -> Context:
        rep = self.reps.get(rep_id)
        team_id = (rep.team_id if rep else None) or event_team_id
        team = self.teams.get(team_id) if team_id else None
        merged = {(t.kpi, t.window): t for t in self.team_targets.get(team_id or "", ())}
        merged.update({(t.kpi, t.window): t for t in self.rep_targets.get(rep_id, ())})
        rules = {r.rule_id: r for r in self.team_rules.get(team_id or "", ())}
        rules.update({r.rule_id: r for r in self.rep_rules.get(rep_id, ())})
        base = Context()
        return Context(
            timezone=team.timezone if team else self.default_timezone,
            team_id=team_id,
            rep_name=rep.name if rep else None,
            shift=team.shift if team else base.shift,
            targets=tuple(merged.values()),
            alert_rules=tuple(rules.values()),
        )
