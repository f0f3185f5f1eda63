"""Settings of the embedded mode's engine (prefix CALLPULSE_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.kit.settings import ENV_PREFIX


class StandaloneSettings(BaseSettings):
    """How the embedded engine checkpoints its state and how long it keeps its event log."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    CHECKPOINT_SECONDS: float = Field(
        default=30.0,
        gt=0,
        description="How often the core's changed state is written to SQLite with the log "
        "position it reflects (and at a clean stop); a start replays only the events after it.",
    )
    LOG_RETENTION_DAYS: float = Field(
        default=35.0,
        gt=0,
        description="Events a checkpoint covers are deleted from the log once received this "
        "long ago. 35 days: a month window spans at most 31 days and an event arrives after it "
        "happens, so what the log keeps still rebuilds every window (today, week, month) when "
        "a checkpoint is discarded (the KPI rules changed); 4 days spare for time zones and "
        "senders' clocks.",
    )
