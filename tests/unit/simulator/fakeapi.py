"""A stand-in for the callpulse API: serves rep KPIs from a given truth, optionally tampered."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI, Header, HTTPException

from services.simulator.truth import Truth

KEY = "cp_test_viewer_key"


def fake_api(truth: Truth, tamper: dict[tuple[str, str, str], Any] | None = None) -> FastAPI:
    """GET /v1/reps/{rep_id}/kpis answering from `truth`, with (rep, window, kpi) overrides."""
    served = copy.deepcopy(truth)
    for (rep, window, kpi), value in (tamper or {}).items():
        served[rep][window][kpi] = value
    app = FastAPI()

    @app.get("/v1/reps/{rep_id}/kpis")
    async def rep_kpis(
        rep_id: str, window: str = "today", authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        if authorization != f"Bearer {KEY}":
            raise HTTPException(401, "bad key")
        if rep_id not in served:
            raise HTTPException(404, "unknown rep")
        return {"rep_id": rep_id, "window": window, "timezone": "UTC", **served[rep_id][window]}

    return app
