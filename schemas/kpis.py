"""KPI snapshot contract: what the aggregator publishes to `callpulse.kpis` and the API serves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

WindowName = Literal["today", "hour", "15m", "60m", "week", "month"]
WINDOWS: tuple[WindowName, ...] = ("today", "hour", "15m", "60m", "week", "month")
RepStatus = Literal["idle", "ringing", "on_call", "wrap_up"]

KpiKind = Literal["additive", "ratio"]
"""additive: a counter the aggregator's rule table credits, summed over time, reps and teams;
ratio: a formula of additive totals (`kpi_values`), never summed."""
Unit = Literal["count", "seconds", "ratio", "currency", "score"]
"""count (an integer); seconds (a duration); ratio (0..1); currency (an amount in the team's
currency); score (customer-satisfaction points, 1-5 per response)."""


@dataclass(frozen=True, slots=True)
class Names:
    """A KPI's name in English (title case, as a heading) and Simplified Chinese, and short forms
    for narrow table columns (the full name when not given)."""

    en: str
    zh: str
    short_en: str | None = None
    short_zh: str | None = None


@dataclass(frozen=True, slots=True)
class KpiSpec:
    """One KPI, declared once; the glossary, the Prometheus series, `ADDITIVE`, the additive part
    of `kpi_values` and the report models follow from it.

    `names` None marks a component of a ratio (csat_sum): a field of `Kpis` and a counter, but
    no KPI of its own (not a `KpiName`), so it has no label and no Prometheus series. `metric` is
    the Prometheus suffix (`callpulse_team_<metric>`, `callpulse_rep_<metric>`), the name when not
    given; `help` is the series' help text and the API field's description.
    """

    name: str
    kind: KpiKind
    unit: Unit
    names: Names | None
    help: str
    metric: str | None = None

    @property
    def series(self) -> str:
        """The Prometheus metric suffix."""
        return self.metric or self.name

    @property
    def description(self) -> str:
        """The API field's description: the help text with its unit."""
        null = "; null on a 0 denominator" if self.kind == "ratio" else ""
        return f"{self.help}{_IN_UNIT[self.unit]}{null}."


_IN_UNIT: dict[Unit, str] = {
    "count": "",
    "seconds": ", in seconds",
    "ratio": ", 0..1",
    "currency": ", in the team's currency",
    "score": "",
}


# The declaration. A new KPI is one entry here, with its `Kpis` field and its `KpiName` entry
# below (pydantic and mypy need those spelled out; tests/unit/test_kpi_declaration.py holds the
# three to each other). A field is `int = 0` for a count or score counter, `float = 0` for
# seconds or currency, `float | None = None` for a ratio. A counter also needs its rule in
# services/aggregator/domain/counters.py, in the same order as the additive entries here; a
# ratio needs its formula in `_ratios`. docs/adding-a-kpi.md walks through an example.
# Existing `metric` and `help` values are a contract: deploy/ dashboards and alert rules query
# those series. A 0..1 value takes Prometheus' `_ratio` unit suffix.
KPI_SPECS: tuple[KpiSpec, ...] = (
    KpiSpec(
        "dials",
        "additive",
        "count",
        Names("Dials", "外呼量", short_zh="外呼"),
        "Outbound calls started",
    ),
    KpiSpec(
        "inbound_calls",
        "additive",
        "count",
        Names("Inbound calls", "呼入量", "Inbound", "呼入"),
        "Inbound calls handled",
    ),
    KpiSpec(
        "connects",
        "additive",
        "count",
        Names("Connects", "接通量", "Conn.", "接通"),
        "Calls answered by a person",
    ),
    KpiSpec(
        "connect_rate",
        "ratio",
        "ratio",
        Names("Connect rate", "接通率", "Conn. %"),
        "Outbound connects per dial",
        metric="connect_ratio",
    ),
    KpiSpec(
        "talk_seconds",
        "additive",
        "seconds",
        Names("Talk time", "通话时长", "Talk"),
        "Time in conversation",
    ),
    KpiSpec(
        "avg_talk_seconds",
        "ratio",
        "seconds",
        Names("Avg talk time", "平均通话时长", "Avg talk", "平均通话"),
        "Talk time per connect",
    ),
    KpiSpec(
        "conversations",
        "additive",
        "count",
        Names("Conversations", "有效通话"),
        "Connects of at least the conversation minimum",
    ),
    KpiSpec(
        "conversions",
        "additive",
        "count",
        Names("Conversions", "成交量", "Conv.", "成交"),
        "Calls whose latest outcome is a sale",
    ),
    KpiSpec(
        "conversion_rate",
        "ratio",
        "ratio",
        Names("Conversion rate", "转化率", "Conv. %"),
        "Conversions per connect",
        metric="conversion_ratio",
    ),
    KpiSpec("revenue", "additive", "currency", Names("Revenue", "成交金额"), "Sum of sale amounts"),
    KpiSpec("avg_deal", "ratio", "currency", Names("Avg deal", "客单价"), "Revenue per conversion"),
    KpiSpec(
        "csat_avg",
        "ratio",
        "score",
        Names("CSAT", "满意度"),
        "Mean customer-satisfaction score (1-5)",
        metric="csat_average",
    ),
    KpiSpec(
        "csat_sum",
        "additive",
        "score",
        None,
        "Sum of customer-satisfaction scores: csat_avg's numerator",
    ),
    KpiSpec(
        "csat_responses",
        "additive",
        "count",
        Names("CSAT responses", "评价数", "Responses"),
        "Customer-satisfaction survey responses",
    ),
)
"""Every KPI: additive entries in the aggregator rule table's order, named ones in `KpiName`'s."""

KpiName = Literal[
    "dials",
    "inbound_calls",
    "connects",
    "connect_rate",
    "talk_seconds",
    "avg_talk_seconds",
    "conversations",
    "conversions",
    "conversion_rate",
    "revenue",
    "avg_deal",
    "csat_avg",
    "csat_responses",
]
"""Every KPI a snapshot, a leaderboard or a target can name (the declared ones with `names`)."""
KPI_NAMES: tuple[KpiName, ...] = get_args(KpiName)
SPEC: dict[str, KpiSpec] = {spec.name: spec for spec in KPI_SPECS}
ADDITIVE: tuple[str, ...] = tuple(s.name for s in KPI_SPECS if s.kind == "additive")
"""The counters, in the aggregator rule table's order."""


def describe(schema: dict[str, Any]) -> None:
    """Give each declared KPI property of a model's JSON Schema its declared description."""
    for name, prop in schema.get("properties", {}).items():
        spec = SPEC.get(name)
        if spec is not None:
            prop.setdefault("description", spec.description)


class Kpis(BaseModel):
    """The KPIs of one subject over one window; rates and averages are null on a 0 denominator."""

    model_config = ConfigDict(frozen=True, json_schema_extra=describe)

    window: WindowName
    window_start: AwareDatetime
    window_end: AwareDatetime
    dials: int = 0
    inbound_calls: int = 0
    connects: int = 0
    connect_rate: float | None = None
    talk_seconds: float = 0
    avg_talk_seconds: float | None = None
    conversations: int = 0
    conversions: int = 0
    conversion_rate: float | None = None
    revenue: float = 0
    avg_deal: float | None = None
    csat_avg: float | None = None
    csat_responses: int = 0
    csat_sum: int = 0


KPI_FIELDS: tuple[str, ...] = tuple(name for name in Kpis.model_fields if name in SPEC)
"""The KPI fields of `Kpis` in its order: one per declared KPI."""

_DIGITS: Mapping[Unit, int] = {"seconds": 3, "currency": 4}
"""Counters are exact to the millisecond and to 1/10,000 of the currency (the rule table's
`scale`); rounding there drops the float noise of summing them."""


def _exact(counter: str, total: float) -> float:
    digits = _DIGITS.get(SPEC[counter].unit)
    return total if digits is None else round(total, digits)


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else round(num / den, 6)


def kpi_values(**totals: float) -> dict[str, Any]:
    """Every KPI of the design (§1) from additive totals: the counters as given, the ratios by
    their formulas (`_ratios`).

    Every counter must be given, and nothing else: code that builds totals by hand (the
    reference fold) fails loudly when a counter is declared that it does not know.
    """
    if totals.keys() != set(ADDITIVE):
        missing = ", ".join(n for n in ADDITIVE if n not in totals) or "none"
        unknown = ", ".join(sorted(totals.keys() - set(ADDITIVE))) or "none"
        raise TypeError(f"kpi_values() needs every counter: missing {missing}; unknown {unknown}")
    return {name: _exact(name, totals[name]) for name in ADDITIVE} | _ratios(**totals)


def _ratios(
    *,
    dials: float,
    inbound_calls: float,
    connects: float,
    talk_seconds: float,
    conversions: float,
    revenue: float,
    csat_sum: float,
    csat_responses: float,
    **_others: float,
) -> dict[str, float | None]:
    """The rates and averages from additive totals: the one place they are defined.

    `connects` counts every connected call and `inbound_calls` the inbound calls a rep answered,
    so `connect_rate` is outbound connects per dial while the averages use all connects.
    """
    return {
        "connect_rate": _ratio(connects - inbound_calls, dials),
        "avg_talk_seconds": _ratio(talk_seconds, connects),
        "conversion_rate": _ratio(conversions, connects),
        "avg_deal": _ratio(revenue, conversions),
        "csat_avg": _ratio(csat_sum, csat_responses),
    }


def combine(parts: list[Kpis], *, window: WindowName, start: datetime, end: datetime) -> Kpis:
    """Totals of several subjects' KPIs over one window (a team from its reps)."""
    sums: dict[str, Any] = {name: sum(getattr(p, name) for p in parts) for name in ADDITIVE}
    return Kpis(window=window, window_start=start, window_end=end, **kpi_values(**sums))


class TargetProgress(BaseModel):
    """Progress of one KPI against its target, with the pro-rata expectation during the shift."""

    model_config = ConfigDict(frozen=True)

    kpi: str
    window: WindowName
    target: float
    value: float | None
    progress: float | None = Field(description="value / target; 1.0 means met.")
    met: bool
    expected: float | None = Field(
        default=None, description="Pro-rata share of the target expected by now in the shift."
    )


class HourlyPoint(BaseModel):
    """Dials and connects in one local hour of day, over the retained days."""

    model_config = ConfigDict(frozen=True)

    hour: int = Field(ge=0, le=23)
    dials: int
    connects: int
    connect_rate: float | None


class RepSnapshot(BaseModel):
    """The latest state of one rep: every window, status and target progress (key: rep_id)."""

    model_config = ConfigDict(frozen=True)

    rep_id: str
    team_id: str | None = None
    rep_name: str | None = None
    timezone: str
    status: RepStatus = "idle"
    status_since: AwareDatetime | None = None
    as_of: AwareDatetime = Field(description="When the aggregator computed this snapshot.")
    lag_seconds: float = Field(
        description="Seconds from the newest applied event's arrival in Kafka to this snapshot."
    )
    last_event_at: AwareDatetime | None = None
    windows: dict[WindowName, Kpis]
    targets: list[TargetProgress] = []
    hourly: list[HourlyPoint] = []
