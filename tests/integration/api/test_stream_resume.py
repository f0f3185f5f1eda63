"""SSE on the real PostgreSQL, two replicas: alerts stored by one reach the other's clients, and
a client resumes on either with `Last-Event-ID` without missing a transition."""

from __future__ import annotations

from pydantic import SecretStr

from services.api.app import create_app
from services.api.config import ApiSettings
from tests.integration.api.servers import serve
from tests.unit.api.alerts import make_alert, resolve
from tests.unit.api.sse import alert_frames


async def test_resume_across_replicas(postgres_url: str, unique: str) -> None:
    key = f"cp_admin_{unique}"
    settings = ApiSettings(
        DATABASE_URL=postgres_url, BOOTSTRAP_ADMIN_KEY=SecretStr(key), ALERT_POLL_SECONDS=0.2
    )
    writer, other = create_app(settings), create_app(settings)
    team = f"t-{unique}"
    async with serve(writer) as writer_url, serve(other) as other_url:
        alerts = writer.state.callpulse_api.alerts
        first = make_alert(f"a1-{unique}", rep_id=f"r1-{unique}", team_id=team)

        stream = alert_frames(other_url, key, team_id=team)
        _, start_id, _ = await anext(stream)
        await alerts.record([first])  # stored by the writer, seen by the other's feed
        kind, seen_id, data = await anext(stream)
        assert (kind, data and data["alert_id"]) == ("alert", first.alert_id)
        assert int(seen_id or 0) > int(start_id or 0)
        await stream.aclose()

        second = make_alert(f"a2-{unique}", rep_id=f"r2-{unique}", team_id=team)
        elsewhere = make_alert(f"x-{unique}", rep_id=f"r3-{unique}", team_id=f"other-{unique}")
        await alerts.record([second, elsewhere])
        await alerts.record([resolve(first)])

        stream = alert_frames(writer_url, key, team_id=team, last_event_id=seen_id)
        missed = [await anext(stream), await anext(stream)]
        await stream.aclose()
    assert [(d and d["alert_id"], d and d["state"]) for _, _, d in missed] == [
        (second.alert_id, "firing"),
        (first.alert_id, "resolved"),
    ]
    ids = [int(i or 0) for _, i, _ in missed]
    assert int(seen_id or 0) < ids[0] < ids[1]
