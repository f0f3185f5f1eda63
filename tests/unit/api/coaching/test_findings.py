"""The findings table: which scorecard numbers make which finding, with its numbers and text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas.coaching import ScoreLine
from schemas.kpis import KPI_NAMES, KpiName
from services.api.coaching.findings import RULES, findings
from services.api.coaching.stats import Distribution


def lines(**given: dict[str, Any]) -> dict[KpiName, ScoreLine]:
    """Every KPI line empty except the given ones."""
    empty = dict.fromkeys(
        (
            "value",
            "previous",
            "change",
            "change_ratio",
            "target",
            "progress",
            "team_median",
            "percentile",
        ),
        None,
    )
    return {k: ScoreLine(kpi=k, **(empty | given.get(k, {}))) for k in KPI_NAMES}


CASES: list[tuple[str, dict[str, dict[str, Any]], int, list[str]]] = [
    (
        "bottom quarter connect rate",
        {
            "dials": {"value": 120},
            "connect_rate": {"value": 0.041, "team_median": 0.079, "percentile": 12.5},
        },
        8,
        ["connect_rate_low"],
    ),
    (
        "too few dials to judge",
        {
            "dials": {"value": 12},
            "connect_rate": {"value": 0.041, "team_median": 0.079, "percentile": 12.5},
        },
        8,
        [],
    ),
    (
        "a team of three has no quarters",
        {
            "dials": {"value": 120},
            "connect_rate": {"value": 0.041, "team_median": 0.079, "percentile": 12.5},
        },
        3,
        [],
    ),
    (
        "short talk while converting at the median",
        {
            "connects": {"value": 30},
            "avg_talk_seconds": {"value": 103, "target": 300, "progress": 0.343333},
            "conversion_rate": {"value": 0.1, "team_median": 0.1, "percentile": 50},
            "connect_rate": {"value": 0.3, "team_median": 0.2, "percentile": 80},
        },
        8,
        ["talk_short_lever"],
    ),
    (
        "falling conversions and low CSAT",
        {
            "conversions": {"value": 3, "previous": 10, "change": -7, "change_ratio": -0.7},
            "csat_avg": {"value": 2.8},
            "csat_responses": {"value": 6},
        },
        8,
        ["conversions_falling", "csat_low"],
    ),
    (
        "top converter",
        {
            "connects": {"value": 40},
            "conversion_rate": {"value": 0.3, "team_median": 0.12, "percentile": 93.75},
        },
        8,
        ["conversion_top"],
    ),
]


@pytest.mark.parametrize(
    ("given", "team", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rules_fire_on_their_numbers(
    given: dict[str, dict[str, Any]], team: int, expected: list[str]
) -> None:
    assert [f.rule for f in findings(lines(**given), team)] == expected


def test_a_finding_says_its_numbers_in_both_languages() -> None:
    given: dict[str, dict[str, Any]] = {
        "dials": {"value": 120},
        "connect_rate": {"value": 0.041, "team_median": 0.079, "percentile": 12.5},
    }
    [finding] = findings(lines(**given), 8)
    assert finding.en.startswith("connect rate 4.1 %, bottom quarter of the team (median 7.9 %)")
    assert "接通率 4.1 %" in finding.zh
    assert "7.9 %" in finding.zh
    assert finding.numbers["connect_rate.value"] == 0.041
    assert finding.numbers["connect_rate.median"] == 0.079
    assert finding.numbers["dials.value"] == 120


def test_talk_is_shown_as_minutes_and_seconds() -> None:
    given: dict[str, dict[str, Any]] = {
        "connects": {"value": 30},
        "avg_talk_seconds": {"value": 103, "target": 300, "progress": 0.343333},
        "conversion_rate": {"value": 0.1, "team_median": 0.1, "percentile": 50},
    }
    [finding] = findings(lines(**given), 8)
    assert "average talk 1:43 against the 5:00 target" in finding.en


def test_every_rule_id_is_distinct() -> None:
    assert len({r.rule for r in RULES}) == len(RULES)


@pytest.mark.parametrize(
    ("values", "value", "median", "percentile"),
    [
        ([1, 2, 3, 4], 1, 2.5, 12.5),
        ([1, 2, 3, 4], 4, 2.5, 87.5),
        ([2, 2, 2, 2], 2, 2, 50.0),
        ([1, None, 3], 3, 2, 75.0),
        ([None], None, None, None),
    ],
)
def test_team_median_and_mid_rank_percentile(
    values: list[float | None], value: float | None, median: float | None, percentile: float | None
) -> None:
    team = Distribution(values)
    assert team.median == median
    assert team.percentile(value) == percentile


def test_docs_list_every_rule() -> None:
    doc = (Path(__file__).resolve().parents[4] / "docs" / "coaching.md").read_text()
    for rule in RULES:
        assert f"| `{rule.rule}` | {rule.kind} |" in doc, rule.rule
