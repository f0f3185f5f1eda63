"""Native webhook adapters, one module per provider, looked up by URL name."""

from __future__ import annotations

from services.ingest.providers import aircall, freeswitch, telnyx, twilio, vonage
from services.ingest.providers.base import Provider

PROVIDERS: dict[str, Provider] = {
    module.PROVIDER.name: module.PROVIDER
    for module in (twilio, telnyx, vonage, aircall, freeswitch)
}

__all__ = ["PROVIDERS", "Provider"]
