"""A small Server-Sent Events reader for the stream tests."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx

Frame = tuple[str, str | None, dict[str, Any] | None]
"""(event, id, data); an id-only frame has no event and no data."""


async def frames(lines: AsyncIterator[str]) -> AsyncIterator[Frame]:
    """The frames of an event stream, from its lines."""
    kind, event_id, data = "", None, None
    async for line in lines:
        if line.startswith("event:"):
            kind = line.removeprefix("event:").strip()
        elif line.startswith("id:"):
            event_id = line.removeprefix("id:").strip()
        elif line.startswith("data:"):
            data = json.loads(line.removeprefix("data:").strip())
        elif not line and (event_id is not None or data is not None):
            yield kind, event_id, data
            kind, event_id, data = "", None, None


async def events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event, data) of the frames that carry data."""
    async for kind, _, data in frames(lines):
        if data is not None:
            yield kind, data


async def alert_frames(
    url: str, key: str, *, team_id: str, last_event_id: str | None = None
) -> AsyncGenerator[Frame, None]:
    """Stream one team's events from a served API, skipping `kpi` frames."""
    headers = {"Authorization": f"Bearer {key}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with (
        httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client,
        client.stream("GET", "/v1/stream", params={"team_id": team_id}) as response,
    ):
        assert response.status_code == 200
        async for frame in frames(response.aiter_lines()):
            if frame[0] != "kpi":
                yield frame
