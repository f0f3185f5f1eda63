"""One zh/en glossary of KPI and window names: complete, served to the page, used by alerts."""

# ruff: noqa: RUF001 (zh-CN alert messages use full-width punctuation on purpose)

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from schemas.glossary import GLOSSARY, Glossary, in_sentence, kpi_label, window_label
from schemas.kpis import KPI_NAMES, WINDOWS, Kpis
from schemas.roster import AlertRule, Shift, Target
from services.aggregator.domain.alerts import EVALUATORS, Scene
from services.api.routes import wallboard
from tests.unit.api.snapshots import make_snapshot

JS_DIR = Path(wallboard.__file__).resolve().parents[1] / "static" / "js"
JS = "\n".join(path.read_text() for path in sorted(JS_DIR.glob("*.js")))
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_kpi_and_window_is_named_in_both_languages() -> None:
    assert set(GLOSSARY.kpis) == set(KPI_NAMES)
    assert set(GLOSSARY.windows) == set(WINDOWS)
    labels = [*GLOSSARY.kpis.values(), *GLOSSARY.windows.values()]
    labels += [k.short for k in GLOSSARY.kpis.values()]
    for label in labels:
        assert label.en
        assert label.en.isascii(), label
        assert CJK.search(label.zh), label


def test_no_two_kpis_share_a_name() -> None:
    for lang in ("en", "zh"):
        names = [kpi_label(kpi, lang) for kpi in KPI_NAMES]
        assert len(set(names)) == len(names), lang
        windows = [window_label(w, lang) for w in WINDOWS]
        assert len(set(windows)) == len(windows), lang


@pytest.mark.parametrize(
    ("kpi", "unit"),
    [
        ("dials", "count"),
        ("connect_rate", "ratio"),
        ("conversion_rate", "ratio"),
        ("talk_seconds", "seconds"),
        ("avg_talk_seconds", "seconds"),
        ("revenue", "currency"),
        ("avg_deal", "currency"),
        ("csat_avg", "score"),
        ("csat_responses", "count"),
    ],
)
def test_units(kpi: str, unit: str) -> None:
    assert GLOSSARY.kpis[kpi].unit == unit  # type: ignore[index]


def test_units_follow_the_kpi_types() -> None:
    # An integer KPI is a count; a float one is anything but.
    for kpi in KPI_NAMES:
        integer = Kpis.model_fields[kpi].annotation is int
        assert (GLOSSARY.kpis[kpi].unit == "count") == integer, kpi


def test_unknown_identifiers_are_shown_as_they_are() -> None:
    assert kpi_label("idle_minutes", "zh") == "idle_minutes"
    assert window_label("year", "en") == "year"


@pytest.mark.parametrize(
    ("label", "phrase"),
    [("Connect rate", "connect rate"), ("Dials", "dials"), ("CSAT", "CSAT"), ("", "")],
)
def test_in_sentence(label: str, phrase: str) -> None:
    assert in_sentence(label) == phrase


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(wallboard.router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://x") as c:
        yield c


async def test_the_page_gets_the_glossary_without_a_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/glossary.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert Glossary.model_validate_json(response.content) == GLOSSARY
    assert (await client.head("/static/glossary.json")).status_code == 200


def test_the_page_names_no_kpi_or_window_itself() -> None:
    """Its labels come from the glossary: no KPI, window or column name in its own tables."""
    start = JS.index("const I18N = {")
    table = JS[start : JS.index("\n};", start)]
    keys = set(re.findall(r'"?([a-z0-9_]+)"?:\s', table))
    assert not keys & set(KPI_NAMES)
    assert not {k for k in keys if k.startswith(("w_", "h_"))}
    assert '"static/glossary.json"' in JS


NOON = datetime(2026, 3, 10, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rule", "english", "chinese"),
    [
        (
            AlertRule(rule_id="r", kind="threshold", kpi="connect_rate", window="15m", value=0.5),
            "Rep a: connect rate (last 15 min) is 0.20, below 0.50",
            "Rep a：接通率（近15分钟）为 0.20，低于 0.50",
        ),
        (
            AlertRule(rule_id="r", kind="pace", kpi="dials"),
            "Rep a is behind pace on dials: 10 of an expected 30 by now (target 80 today)",
            "Rep a 的外呼量进度落后：当前 10，按进度此时应达 30（今日目标 80）",
        ),
        (
            AlertRule(rule_id="r", kind="threshold", kpi="csat_avg", value=4, op="below"),
            "Rep a: CSAT (today) is 3, below 4",
            "Rep a：满意度（今日）为 3，低于 4",
        ),
    ],
)
def test_alert_messages_name_kpis_as_the_glossary_does(
    rule: AlertRule, english: str, chinese: str
) -> None:
    snap = make_snapshot("a", "t1", NOON, dials=10, connects=2, csat_sum=3, csat_responses=1)
    shift = Shift(start=time(9), end=time(17))
    scene = Scene.of(snap, shift, (Target(kpi="dials", value=80),), NOON)
    reading = EVALUATORS[rule.kind](rule, scene)
    assert reading is not None
    assert (reading.message_en, reading.message_zh) == (english, chinese)
