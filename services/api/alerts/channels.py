"""Notification channels: what a team configures, how a channel is named in deliveries, and the
global defaults from the settings."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

from services.api.config import ApiSettings, check_http_url
from services.kit.secrets import check_webhook_secret

ChannelType = Literal["webhook", "slack", "wecom", "dingtalk", "feishu", "alertmanager"]
SIGNED: frozenset[str] = frozenset({"webhook", "dingtalk", "feishu"})
"""Types whose deliveries a secret signs; the others take none (their URL is the credential)."""

HttpUrl = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(check_http_url)]


class Channel(BaseModel):
    """One notification channel: its type, endpoint and, for signed types, secret.

    `webhook`: Standard Webhooks, secret required (`whsec_…`); `dingtalk`, `feishu`: the robot's
    signing secret, optional (a robot may rely on keywords or IP allow-lists instead);
    `slack`, `wecom`: the URL carries the token; `alertmanager`: the Alertmanager base URL.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ChannelType
    url: HttpUrl
    secret: SecretStr | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _secret_fits_type(self) -> Channel:
        if self.type not in SIGNED and self.secret is not None:
            raise ValueError(f"{self.type} channels take no secret")
        if self.type == "webhook":
            if self.secret is None:
                raise ValueError("webhook channels need a secret (`whsec_…`)")
            check_webhook_secret(self.secret.get_secret_value())
        return self

    @property
    def key(self) -> str:
        """The name of this channel in deliveries: type and a digest of the URL.

        Stable while the channel exists, whatever its position in the team's list, and
        carrying no credential.
        """
        return f"{self.type}:{hashlib.sha256(self.url.encode()).hexdigest()[:16]}"

    def secret_value(self) -> str | None:
        """The secret in clear, or None."""
        return self.secret.get_secret_value() if self.secret is not None else None

    def stored(self) -> dict[str, str | None]:
        """The stored form (the secret in clear: it signs each delivery)."""
        return {"type": self.type, "url": self.url, "secret": self.secret_value()}


def redacted_url(url: str) -> str:
    """A URL safe to show: scheme, host and port only (chat-robot URLs carry their token)."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port is not None else ""
    rest = "/…" if parsed.path not in ("", "/") or parsed.query else ""
    return f"{parsed.scheme}://{parsed.host}{port}{rest}"


def default_channels(settings: ApiSettings) -> list[Channel]:
    """The channels of teams that configured none: Alertmanager and the generic webhook."""
    channels: list[Channel] = []
    if settings.ALERTMANAGER_URL is not None:
        channels.append(Channel(type="alertmanager", url=settings.ALERTMANAGER_URL))
    if settings.ALERT_WEBHOOK_URL is not None:
        channels.append(
            Channel(
                type="webhook", url=settings.ALERT_WEBHOOK_URL, secret=settings.ALERT_WEBHOOK_SECRET
            )
        )
    return channels
