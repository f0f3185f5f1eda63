"""Alert contract: transitions published to `callpulse.alerts` (key: rep_id) and delivered."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from schemas.kpis import WindowName

AlertKind = Literal["threshold", "pace", "idle", "missed"]


class Alert(BaseModel):
    """One alert transition; `alert_id` is the same for every transition of one alert."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    state: Literal["firing", "resolved"]
    kind: AlertKind
    rule: str
    rep_id: str
    team_id: str | None = None
    kpi: str
    window: WindowName
    value: float | None
    threshold: float
    message_en: str
    message_zh: str
    at: AwareDatetime
    fired_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
