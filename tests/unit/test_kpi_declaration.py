"""The KPI declaration (`schemas.kpis.KPI_SPECS`) agrees with what must be spelled out beside it
(the `Kpis` fields, `KpiName`) and with the aggregator's rule table, and everything derived from
it (glossary, Prometheus series, `ADDITIVE`, `kpi_values`, report models) follows it."""

from __future__ import annotations

from typing import get_args

import pytest

from schemas.glossary import GLOSSARY
from schemas.kpis import (
    ADDITIVE,
    KPI_FIELDS,
    KPI_SPECS,
    SPEC,
    KpiName,
    Kpis,
    KpiSpec,
    kpi_values,
)
from services.aggregator.domain.counters import RULES, CounterRule
from services.api.metrics import SERIES
from services.api.routes.schemas import DailyRow, ReportKpis

NAMED = [spec for spec in KPI_SPECS if spec.names is not None]
WINDOW_FIELDS = ["window", "window_start", "window_end"]


def test_each_kpi_is_declared_once() -> None:
    names = [spec.name for spec in KPI_SPECS]
    assert len(set(names)) == len(names)


def test_the_declared_kpis_are_the_fields_of_kpis() -> None:
    fields = list(Kpis.model_fields)
    assert fields[:3] == WINDOW_FIELDS
    assert set(fields[3:]) == set(SPEC), "a KPI without a Kpis field, or a field undeclared"
    assert list(KPI_FIELDS) == fields[3:]


def test_kpi_name_lists_the_named_kpis_in_declaration_order() -> None:
    assert get_args(KpiName) == tuple(spec.name for spec in NAMED)


def _annotation(spec: KpiSpec) -> tuple[object, object]:
    """The type and default a KPI's `Kpis` field must have."""
    if spec.kind == "ratio":
        return float | None, None
    exact = spec.unit in ("count", "score")  # counts and sums of scores are integers
    return (int if exact else float), 0


@pytest.mark.parametrize("spec", KPI_SPECS, ids=lambda s: s.name)
def test_a_kpis_field_has_the_type_of_its_kind_and_unit(spec: KpiSpec) -> None:
    field = Kpis.model_fields[spec.name]
    assert (field.annotation, field.default) == _annotation(spec)


def test_every_counter_has_one_rule_in_the_aggregator_and_in_its_order() -> None:
    """The rule table (counters.RULES) is the aggregator's; its names are the additive KPIs."""
    assert [rule.name for rule in RULES] == list(ADDITIVE)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_a_rule_scale_is_what_its_unit_is_exact_to(rule: CounterRule) -> None:
    # kpi_values rounds seconds to 3 and currency to 4 digits: the rules' integer units.
    scale = {"seconds": 1000, "currency": 10_000}.get(SPEC[rule.name].unit, 1)
    assert rule.scale == scale


ZERO = dict.fromkeys(ADDITIVE, 0)


def test_kpi_values_gives_every_declared_kpi() -> None:
    values = kpi_values(**ZERO)
    assert set(values) == set(SPEC)
    ratios = {spec.name for spec in KPI_SPECS if spec.kind == "ratio"}
    assert {name for name, value in values.items() if value is None} == ratios
    assert all(values[name] == 0 for name in ADDITIVE)


@pytest.mark.parametrize(
    ("totals", "message"),
    [
        ({**ZERO, "connect_rate": 0.5}, "missing none; unknown connect_rate"),
        ({k: v for k, v in ZERO.items() if k != "dials"}, "missing dials; unknown none"),
    ],
)
def test_kpi_values_wants_every_counter_and_nothing_else(
    totals: dict[str, float], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        kpi_values(**totals)


def test_counters_keep_their_exact_units() -> None:
    values = kpi_values(**{**ZERO, "talk_seconds": 0.1 + 0.2, "revenue": 0.1 + 0.2, "dials": 3})
    assert (values["talk_seconds"], values["revenue"], values["dials"]) == (0.3, 0.3, 3)
    assert isinstance(values["dials"], int)


def test_the_glossary_follows_the_declaration() -> None:
    assert list(GLOSSARY.kpis) == [spec.name for spec in NAMED]
    for spec in NAMED:
        assert spec.names is not None
        label = GLOSSARY.kpis[spec.name]  # type: ignore[index]
        assert (label.en, label.zh, label.unit) == (spec.names.en, spec.names.zh, spec.unit)
        assert label.short.en == (spec.names.short_en or spec.names.en)
        assert label.short.zh == (spec.names.short_zh or spec.names.zh)


# Dashboards and alert rules in deploy/ query these series: a declaration never renames them.
PUBLISHED_SERIES = {
    "dials": ("dials", "Outbound calls started"),
    "inbound_calls": ("inbound_calls", "Inbound calls handled"),
    "connects": ("connects", "Calls answered by a person"),
    "connect_rate": ("connect_ratio", "Outbound connects per dial"),
    "talk_seconds": ("talk_seconds", "Time in conversation"),
    "avg_talk_seconds": ("avg_talk_seconds", "Talk time per connect"),
    "conversations": ("conversations", "Connects of at least the conversation minimum"),
    "conversions": ("conversions", "Calls whose latest outcome is a sale"),
    "conversion_rate": ("conversion_ratio", "Conversions per connect"),
    "revenue": ("revenue", "Sum of sale amounts"),
    "avg_deal": ("avg_deal", "Revenue per conversion"),
    "csat_avg": ("csat_average", "Mean customer-satisfaction score (1-5)"),
    "csat_responses": ("csat_responses", "Customer-satisfaction survey responses"),
}


def test_published_prometheus_series_keep_their_names_and_help() -> None:
    assert {kpi: SERIES[kpi] for kpi in PUBLISHED_SERIES} == PUBLISHED_SERIES


def test_every_named_kpi_has_one_series() -> None:
    assert list(SERIES) == [spec.name for spec in NAMED]
    suffixes = [suffix for suffix, _ in SERIES.values()]
    assert len(set(suffixes)) == len(suffixes)
    for spec in NAMED:
        # Prometheus naming: a 0..1 value carries the `_ratio` unit suffix.
        assert spec.series.endswith("_ratio") == (spec.unit == "ratio"), spec.name


def test_the_report_rows_carry_every_kpi_field_required() -> None:
    for model in (ReportKpis, DailyRow):
        fields = model.model_fields
        assert [n for n in fields if n in SPEC] == list(KPI_FIELDS)
        for name in KPI_FIELDS:
            assert fields[name].annotation == Kpis.model_fields[name].annotation, name
            assert fields[name].is_required(), name
            assert fields[name].description == SPEC[name].description
    assert set(DailyRow.model_fields) - set(ReportKpis.model_fields) == {"rep_id"}


def test_the_api_describes_each_kpi_from_its_declaration() -> None:
    properties = Kpis.model_json_schema()["properties"]
    for spec in KPI_SPECS:
        assert properties[spec.name]["description"] == spec.description
    assert "description" not in properties["window"]
