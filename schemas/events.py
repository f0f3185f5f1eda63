"""Call event contract v1: a discriminated union on `type`, frozen models, aware timestamps only.

Unknown fields are ignored (tolerant reader). A breaking change is a new version, never an edit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    field_serializer,
    field_validator,
)
from pydantic.config import JsonDict

Id = Annotated[str, Field(min_length=1, max_length=200)]
PATH_ID_PATTERN = r"^[^/\\\x00-\x1f\x7f]+$"
PATH_ID_RULE = (
    "must not contain '/', '\\' or control characters, nor be '.' or '..': the id is part "
    "of URL paths such as /v1/reps/{rep_id}/kpis"
)
PATH_ID_FIELDS = ("rep_id", "team_id", "campaign_id")
"""Ids that the API puts in URL paths; ingest refuses values that cannot stand there."""
_IN_PATHS: JsonDict = {"pattern": PATH_ID_PATTERN, "not": {"enum": [".", ".."]}}
DECIMAL_PATTERN = r"^[0-9]{1,14}(\.[0-9]{1,4})?$"


def _rfc3339_only(value: object) -> object:
    # pydantic would read a number as Unix time; the contract says RFC 3339 strings.
    if isinstance(value, int | float):
        raise ValueError("must be an RFC 3339 date-time string with an offset")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]
Direction = Literal["outbound", "inbound"]
EndStatus = Literal["completed", "no_answer", "busy", "failed", "canceled", "voicemail"]


class _Event(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    event_id: Id = Field(description="Unique per event from the sender; a retry reuses it.")
    occurred_at: Timestamp = Field(description="RFC 3339 with offset; naive times rejected.")
    call_id: Id = Field(description="Sender's call id, stable across the call's events.")
    rep_id: Id | None = Field(
        default=None,
        description="The rep the call counts for: the latest event (by occurred_at, then "
        "event_id) that names one wins, so an event may leave it out (an inbound call rings "
        "before a rep answers). A call none of whose events names a rep counts for no rep. "
        "No '/', '\\' or control characters, not '.' or '..' (it is part of URL paths).",
        json_schema_extra=_IN_PATHS,
    )
    team_id: Id | None = Field(
        default=None,
        description="The roster wins when both exist. Same characters as rep_id.",
        json_schema_extra=_IN_PATHS,
    )
    campaign_id: Id | None = Field(
        default=None, description="Same characters as rep_id.", json_schema_extra=_IN_PATHS
    )


class CallStarted(_Event):
    """A call began (dialled out, or rang in)."""

    type: Literal["call.started"] = "call.started"
    direction: Direction = "outbound"
    from_: str | None = Field(default=None, alias="from", max_length=64)
    to: str | None = Field(default=None, max_length=64)


class CallAnswered(_Event):
    """A person answered the call; inbound calls may name their rep only here."""

    type: Literal["call.answered"] = "call.answered"


class CallEnded(_Event):
    """The call ended; with started_at/answered_at it stands alone as a CDR."""

    type: Literal["call.ended"] = "call.ended"
    direction: Direction = "outbound"
    end_status: EndStatus
    started_at: Timestamp | None = None
    answered_at: Timestamp | None = None
    talk_seconds: float | None = Field(default=None, ge=0, le=7 * 24 * 3600)
    from_: str | None = Field(default=None, alias="from", max_length=64)
    to: str | None = Field(default=None, max_length=64)


class CallOutcome(_Event):
    """The rep's disposition of the call; the latest one by occurred_at wins."""

    type: Literal["call.outcome"] = "call.outcome"
    outcome: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="`sale`, `callback`, `not_interested`, or another string."
    )
    amount: Decimal | None = Field(
        default=None,
        ge=0,
        max_digits=18,
        decimal_places=4,
        description="Decimal string (a JSON number is accepted too).",
        json_schema_extra={
            "anyOf": [
                {"type": "string", "pattern": DECIMAL_PATTERN},
                {"type": "number", "minimum": 0},
                {"type": "null"},
            ]
        },
    )
    currency: Annotated[str, Field(min_length=3, max_length=3)] | None = None

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float_amounts(cls, value: object) -> object:
        # Floats lose cents; accept strings and integers, and floats only through str().
        return str(value) if isinstance(value, float) else value

    @field_serializer("amount")
    def _amount_str(self, value: Decimal | None) -> str | None:
        return None if value is None else str(value)


class SurveyCompleted(_Event):
    """A customer-satisfaction survey result for the call."""

    type: Literal["survey.completed"] = "survey.completed"
    csat: int = Field(ge=1, le=5)


CallEvent = Annotated[
    CallStarted | CallAnswered | CallEnded | CallOutcome | SurveyCompleted,
    Field(discriminator="type"),
]

call_event_adapter: TypeAdapter[CallEvent] = TypeAdapter(CallEvent)
call_events_adapter: TypeAdapter[list[CallEvent]] = TypeAdapter(list[CallEvent])


def parse_event(data: object) -> CallEvent:
    """Validate one decoded JSON value as a v1 event (raises pydantic.ValidationError)."""
    return call_event_adapter.validate_python(data)


def event_from_json(raw: bytes | str) -> CallEvent:
    """Decode and validate one JSON-encoded event."""
    return call_event_adapter.validate_json(raw)


def event_to_json(event: CallEvent) -> bytes:
    """Encode an event as compact JSON, with its wire names (`from`)."""
    return event.model_dump_json(by_alias=True, exclude_none=True).encode()
