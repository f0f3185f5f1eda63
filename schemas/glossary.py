"""The names of KPIs and windows in English and Simplified Chinese: one glossary for every text.

Alert messages, notifications and the wallboard (served as `/static/glossary.json`) all name a
KPI from here, so the page and the alerts it shows never call one number by two names.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.kpis import KPI_SPECS, KpiName, Names, Unit, WindowName

Lang = Literal["en", "zh"]


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


def _kpi(names: Names, unit: Unit) -> KpiLabel:
    short = Label(en=names.short_en or names.en, zh=names.short_zh or names.zh)
    return KpiLabel(en=names.en, zh=names.zh, unit=unit, short=short)


# The KPI labels follow the declaration (schemas.kpis.KPI_SPECS). Validated rather than
# constructed: a declared name that is no `KpiName` fails here, at import.
GLOSSARY = Glossary.model_validate(
    {
        "kpis": {s.name: _kpi(s.names, s.unit) for s in KPI_SPECS if s.names is not None},
        "windows": {
            "today": Label(en="Today", zh="今日"),
            "hour": Label(en="This hour", zh="本小时"),
            "15m": Label(en="Last 15 min", zh="近15分钟"),
            "60m": Label(en="Last 60 min", zh="近60分钟"),
            "week": Label(en="This week", zh="本周"),
            "month": Label(en="This month", zh="本月"),
        },
    }
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
