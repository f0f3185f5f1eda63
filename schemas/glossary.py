"""The names of KPIs and windows in English and Simplified Chinese: one glossary for every text.

Alert messages, notifications and the wallboard (served as `/static/glossary.json`) all name a
KPI from here, so the page and the alerts it shows never call one number by two names.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.kpis import KpiName, WindowName

Lang = Literal["en", "zh"]
Unit = Literal["count", "seconds", "ratio", "currency", "score"]


class Label(BaseModel):
    """A name in English (title case, as a heading) and in Simplified Chinese."""

    model_config = ConfigDict(frozen=True)

    en: str
    zh: str


class KpiLabel(Label):
    """A KPI's name, its short form for narrow table columns, and the unit of its values."""

    short: Label = Field(description="For narrow places: table column headers.")
    unit: Unit = Field(
        description="count; seconds (a duration); ratio (0..1, shown as a percentage); "
        "currency (an amount in the team's currency); score (1-5)."
    )


class Glossary(BaseModel):
    """Every KPI and window name, by identifier."""

    model_config = ConfigDict(frozen=True)

    kpis: dict[KpiName, KpiLabel]
    windows: dict[WindowName, Label]


def _kpi(
    en: str, zh: str, unit: Unit, short_en: str | None = None, short_zh: str | None = None
) -> KpiLabel:
    return KpiLabel(en=en, zh=zh, unit=unit, short=Label(en=short_en or en, zh=short_zh or zh))


GLOSSARY = Glossary(
    kpis={
        "dials": _kpi("Dials", "外呼量", "count", short_zh="外呼"),
        "inbound_calls": _kpi("Inbound calls", "呼入量", "count", "Inbound", "呼入"),
        "connects": _kpi("Connects", "接通量", "count", "Conn.", "接通"),
        "connect_rate": _kpi("Connect rate", "接通率", "ratio", "Conn. %"),
        "talk_seconds": _kpi("Talk time", "通话时长", "seconds", "Talk"),
        "avg_talk_seconds": _kpi(
            "Avg talk time", "平均通话时长", "seconds", "Avg talk", "平均通话"
        ),
        "conversations": _kpi("Conversations", "有效通话", "count"),
        "conversions": _kpi("Conversions", "成交量", "count", "Conv.", "成交"),
        "conversion_rate": _kpi("Conversion rate", "转化率", "ratio", "Conv. %"),
        "revenue": _kpi("Revenue", "成交金额", "currency"),
        "avg_deal": _kpi("Avg deal", "客单价", "currency"),
        "csat_avg": _kpi("CSAT", "满意度", "score"),
        "csat_responses": _kpi("CSAT responses", "评价数", "count", "Responses"),
    },
    windows={
        "today": Label(en="Today", zh="今日"),
        "hour": Label(en="This hour", zh="本小时"),
        "15m": Label(en="Last 15 min", zh="近15分钟"),
        "60m": Label(en="Last 60 min", zh="近60分钟"),
        "week": Label(en="This week", zh="本周"),
        "month": Label(en="This month", zh="本月"),
    },
)


_KPIS: dict[str, KpiLabel] = dict(GLOSSARY.kpis.items())
_WINDOWS: dict[str, Label] = dict(GLOSSARY.windows.items())


def _pick(label: Label, lang: Lang) -> str:
    return label.zh if lang == "zh" else label.en


def kpi_label(kpi: str, lang: Lang) -> str:
    """A KPI's name as a heading; an identifier the glossary does not know is shown as is."""
    label = _KPIS.get(kpi)
    return kpi if label is None else _pick(label, lang)


def window_label(window: str, lang: Lang) -> str:
    """A window's name as a heading; an identifier the glossary does not know is shown as is."""
    label = _WINDOWS.get(window)
    return window if label is None else _pick(label, lang)


def in_sentence(label: str) -> str:
    """An English heading as it reads inside a sentence: "Connect rate" -> "connect rate";
    an acronym ("CSAT") keeps its capitals."""
    first = label.split(" ", 1)[0]
    if len(first) > 1 and first[1].isupper():
        return label
    return label[:1].lower() + label[1:]
