"""Placeholders are not secrets: both services refuse them at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.ingest.config import IngestSettings
from services.kit.secrets import check_webhook_secret

GOOD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.mark.parametrize("secret", ["whsec_CHANGE_ME", "CHANGE_ME", "whsec_c2hvcnQ=", "whsec_%%%"])
def test_placeholders_and_short_keys_are_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        check_webhook_secret(secret)
    with pytest.raises(ValidationError):
        IngestSettings(WEBHOOK_SECRET=secret)


def test_a_real_secret_is_kept() -> None:
    assert check_webhook_secret(GOOD) == GOOD
    assert IngestSettings(WEBHOOK_SECRET=GOOD).WEBHOOK_SECRET is not None
