"""Baselines for the HTTP benchmarks: a bare FastAPI app on uvicorn.

- `POST /v1/events` parses the JSON (one object, an array, or NDJSON) and answers 202, as ingest
  does, but makes nothing durable.
- `GET /v1/teams/{team_id}/kpis` returns a precomputed payload: the bytes of the file named by
  `BENCH_PAYLOAD_FILE` (the real wallboard payload, captured by the bench), so the size matches.

Run: `uvicorn bench.baseline_app:app`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

_payload_file = os.environ.get("BENCH_PAYLOAD_FILE")
PAYLOAD = Path(_payload_file).read_bytes() if _payload_file else b"{}"

app = FastAPI(title="callpulse bench baseline")


@app.post("/v1/events", status_code=202)
async def events(request: Request) -> JSONResponse:
    """Parse the body like ingest does (JSON or NDJSON) and accept it."""
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/x-ndjson"):
        parsed = [json.loads(line) for line in body.splitlines() if line.strip()]
    else:
        value = json.loads(body)
        parsed = value if isinstance(value, list) else [value]
    return JSONResponse({"accepted": len(parsed)}, status_code=202)


@app.get("/v1/teams/{team_id}/kpis")
async def team_kpis(team_id: str) -> Response:
    """The precomputed wallboard payload."""
    return Response(PAYLOAD, media_type="application/json")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}
