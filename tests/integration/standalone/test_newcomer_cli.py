"""A newcomer's commands against a real `callpulse run`: each fails with one clear line, or works.

Issue 16, items 1-9: simulate signs with the embedded secret and explains a 401; nothing sent off
shift and nothing compared are failures; a busy port or data folder stops `run` before its banner;
`keys` uses the server's database or refuses; `send` to a dead port is one line and can send
outcomes and surveys; /docs and /redoc load nothing from another origin; ingest says which
content types it takes and refuses ids no URL can carry and events dated far ahead; the roster
reads back.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import structlog
from standardwebhooks import Webhook
from typer.testing import CliRunner

from services.cli import app as cli
from services.kit import logging as kit_logging
from services.simulator.truth import write_truth
from tests.e2e.scenario import ADMIN_KEY, ROOT, free_port, process, wait_http

pytestmark = pytest.mark.timeout(240)

runner = CliRunner()
JSON = "application/json"


@dataclass(frozen=True)
class Server:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]


def _env() -> dict[str, str]:
    """The server's environment: its own secret in its data folder, a known admin key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLPULSE_")}
    return env | {"CALLPULSE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("newcomer")
    port = free_port()
    data_dir = root / "data"
    args = ["services.cli", "run", "--port", str(port), "--data-dir", str(data_dir)]
    with process(args, _env(), root / "server.log") as proc:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/readyz", proc=proc)
        yield Server(url, data_dir, proc)


@pytest.fixture(autouse=True)
def no_callpulse_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands must find secrets and databases themselves, not from the test's shell."""
    for name in list(os.environ):
        if name.startswith("CALLPULSE_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def isolated_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Commands configure structlog for the process (onto CliRunner's stream): undo it after."""
    saved = structlog.get_config()
    configure = kit_logging.configure

    def configure_uncached(level: str = "INFO", json: bool | None = None) -> None:
        configure(level, json)
        structlog.configure(cache_logger_on_first_use=False)  # no logger keeps this set-up

    monkeypatch.setattr(kit_logging, "configure", configure_uncached)
    yield
    structlog.configure(**saved)


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args), terminal_width=200)
    return result.exit_code, result.stdout, result.stderr


def run_cli(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`callpulse ARGS` as a process started in `cwd`, as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=cwd,
        env=_env() | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def kpis(server: Server, rep: str, key: str = ADMIN_KEY) -> httpx.Response:
    return httpx.get(
        f"{server.url}/v1/reps/{rep}/kpis",
        params={"window": "today"},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def accepts(server: Server, key: str) -> bool:
    """Whether the server takes `key` (a read every role may make)."""
    headers = {"authorization": f"Bearer {key}"}
    return httpx.get(f"{server.url}/v1/leaderboard", headers=headers, timeout=10).status_code == 200


def night_timezone(now: datetime) -> str:
    """A fixed-offset zone where it is about 03:00 local time: every shift is over."""
    offset = (3 - now.hour) % 24
    offset = offset - 24 if offset > 14 else offset
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


# 1. simulate signs like send, and a 401 tells how to sign


def test_simulate_signs_with_the_embedded_secret(server: Server, tmp_path: Path) -> None:
    code, _, err = invoke(
        "simulate",
        *("--url", server.url, "--data-dir", str(server.data_dir)),
        *("--reps", "2", "--minutes", "20", "--all-day", "--id-prefix", "sig-"),
    )
    assert code == 0, err
    assert "0 requests given up" in " ".join(err.split())


def test_a_refused_signature_says_how_to_sign(server: Server, tmp_path: Path) -> None:
    code, _, err = invoke(
        "simulate",
        *("--url", server.url, "--data-dir", str(tmp_path / "elsewhere")),
        *("--reps", "2", "--minutes", "20", "--all-day", "--attempts", "1"),
    )
    assert code == 1
    text = " ".join(err.split())
    assert "refused the signature" in text
    for hint in ("webhook_secret", "--data-dir", "--secret", "webhook-signature: v1,"):
        assert hint in text


# 2. nothing sent and nothing compared are failures


def test_simulate_off_shift_fails_clearly(server: Server) -> None:
    zone = night_timezone(datetime.now(UTC))
    code, _, err = invoke(
        "simulate",
        *("--url", server.url, "--data-dir", str(server.data_dir)),
        *("--reps", "2", "--minutes", "20", "--timezone", zone, "--timezone", zone),
    )
    assert code == 1
    assert "no events sent" in err
    assert "--all-day" in err


def test_verify_of_nothing_fails(server: Server, tmp_path: Path) -> None:
    truth = tmp_path / "truth.json"
    write_truth(truth, {})
    code, out, _ = invoke("verify", "--url", server.url, "--key", ADMIN_KEY, "--truth", str(truth))
    assert code == 1
    assert "nothing to compare" in out


# 3 and 7. a busy port or data folder stops `run` before anything is printed


def test_run_on_a_busy_port_fails_before_the_banner(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_cli(["run", "--port", str(port), "--data-dir", str(tmp_path / "d")], tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"port {port}" in lines[0]
    assert "already in use" in lines[0]
    assert "PORT=" in lines[0]
    assert not (tmp_path / "d" / "callpulse.db").exists()  # no key was made either


def test_a_second_run_on_the_same_data_folder_refuses(server: Server, tmp_path: Path) -> None:
    done = run_cli(
        ["run", "--port", str(free_port()), "--data-dir", str(server.data_dir)], tmp_path
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"pid {server.proc.pid}" in lines[0]
    assert "--data-dir" in lines[0]


def test_a_killed_servers_lock_does_not_block_the_next(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    for attempt in range(2):
        port = free_port()
        args = ["services.cli", "run", "--port", str(port), "--data-dir", str(data_dir)]
        with process(args, _env(), tmp_path / f"server{attempt}.log") as proc:
            wait_http(f"http://127.0.0.1:{port}/readyz", proc=proc)
            os.killpg(proc.pid, signal.SIGKILL)  # no clean stop: the lock file stays behind
            proc.wait()
    assert (data_dir / "lock").exists()


# 4. keys uses the server's database, or refuses with one line


def test_keys_create_with_the_servers_data_dir_makes_a_working_key(
    server: Server, tmp_path: Path
) -> None:
    done = run_cli(["keys", "create", "--name", "tv", "--data-dir", str(server.data_dir)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert accepts(server, done.stdout.strip())


def test_keys_create_reads_the_data_dir_from_the_environment(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLPULSE_DATA_DIR", str(server.data_dir))
    code, out, err = invoke("keys", "create", "--name", "wall")
    assert code == 0, err
    assert accepts(server, out.strip())


def test_keys_create_elsewhere_refuses_to_make_a_new_database(tmp_path: Path) -> None:
    done = run_cli(["keys", "create", "--name", "tv"], tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "no callpulse database" in lines[0]
    assert "--data-dir" in lines[0]
    assert not (tmp_path / ".callpulse").exists()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///{tmp}/nothing-here.db",
        "nonsense",
        "mysterydb://host/db",
        "postgresql://user:hunter2@127.0.0.1:1/callpulse",
    ],
)
def test_a_bad_database_url_is_one_line(url: str, tmp_path: Path) -> None:
    done = run_cli(
        ["keys", "create", "--name", "tv", "--database-url", url.format(tmp=tmp_path)], tmp_path
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("callpulse keys: ")
    assert "hunter2" not in lines[0]


def test_keys_list_takes_a_plain_sqlite_url(server: Server, tmp_path: Path) -> None:
    url = f"sqlite:///{server.data_dir / 'callpulse.db'}"
    done = run_cli(["keys", "list", "--json", "--database-url", url], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "bootstrap-admin" in [row["name"] for row in json.loads(done.stdout)]


# 5. send: a dead port is one line; outcomes with amounts and surveys can be sent


def test_send_to_a_dead_port_is_one_line(tmp_path: Path) -> None:
    code, out, err = invoke("send", "--url", f"http://127.0.0.1:{free_port()}")
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "cannot reach" in lines[0]


def test_send_builds_a_whole_call_with_outcome_and_survey(server: Server) -> None:
    call = ["--call-id", "newcomer-c1", "--rep", "newcomer-rep", "--data-dir", str(server.data_dir)]
    for extra in (
        ["--type", "call.started"],
        ["--type", "call.answered"],
        ["--type", "call.ended", "--talk-seconds", "320"],
        ["--type", "call.outcome", "--outcome", "sale", "--amount", "120.50"],
        ["--type", "survey.completed", "--csat", "4"],
    ):
        code, out, err = invoke("send", "--url", server.url, *call, *extra)
        assert code == 0, err
        assert out.startswith("202 "), out
    want = (1, 120.5, 4.0)
    got = None
    deadline = time.monotonic() + 30
    while got != want and time.monotonic() < deadline:
        time.sleep(0.3)
        response = kpis(server, "newcomer-rep")
        if response.status_code == 200:
            body = response.json()
            got = (body["conversions"], body["revenue"], body["csat_avg"])
    assert got == want


def test_send_rejects_a_bad_field_before_sending() -> None:
    code, _, err = invoke(
        "send",
        "--url",
        f"http://127.0.0.1:{free_port()}",
        "--type",
        "survey.completed",
        "--csat",
        "9",
    )
    assert code == 2
    assert "csat" in err


# 6. the API documentation pages need no other origin


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_from_the_server(server: Server, page: str) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        html = client.get(page).text
        assets = re.findall(r"""(?:src|href|url)\s*[=:(]\s*['"]([^'"]+)['"]""", html)
        assert any(asset.endswith(".js") for asset in assets), html
        for asset in assets:
            assert asset.startswith("/"), f"{page} loads {asset} from another origin"
            assert client.get(asset).status_code == 200, asset


# 8. what ingest accepts is said, and what it accepts can be queried


def _post(server: Server, body: bytes, content_type: str) -> httpx.Response:
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    secret = (server.data_dir / "webhook_secret").read_text().strip()
    headers = {
        "content-type": content_type,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
    }
    return httpx.post(f"{server.url}/v1/events", content=body, headers=headers, timeout=10)


def _event(n: int, **fields: object) -> dict[str, object]:
    return {
        "event_id": f"nc-{uuid.uuid4().hex[:8]}-{n}",
        "type": "call.started",
        "call_id": f"nc-call-{n}",
        "rep_id": "nc-rep",
        "occurred_at": datetime.now(UTC).isoformat(),
    } | fields


def test_ndjson_is_accepted_as_x_ndjson(server: Server) -> None:
    body = b"\n".join(json.dumps(_event(n)).encode() for n in range(2))
    assert _post(server, body, "application/x-ndjson").json() == {"accepted": 2}


def test_ndjson_sent_as_json_says_which_types_are_accepted(server: Server) -> None:
    body = b"\n".join(json.dumps(_event(n)).encode() for n in range(2))
    response = _post(server, body, "application/json")
    assert response.status_code == 400
    assert "application/x-ndjson" in response.json()["detail"]


def test_an_unknown_content_type_lists_the_accepted_ones(server: Server) -> None:
    response = _post(server, json.dumps(_event(1)).encode(), "text/plain")
    assert response.status_code == 415
    detail = response.json()["detail"]
    assert "application/json" in detail
    assert "application/x-ndjson" in detail


@pytest.mark.parametrize(
    ("field", "value"),
    [("rep_id", "team/alice"), ("rep_id", ".."), ("team_id", "a\\b"), ("campaign_id", "x/y")],
)
def test_ids_that_cannot_stand_in_a_url_path_are_refused(
    server: Server, field: str, value: str
) -> None:
    response = _post(server, json.dumps([_event(1), _event(2, **{field: value})]).encode(), JSON)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [e["path"] for e in errors] == [f"1.{field}"]
    assert "URL path" in errors[0]["message"]


def test_events_dated_far_ahead_are_refused(server: Server) -> None:
    ahead = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    response = _post(server, json.dumps(_event(1, occurred_at=ahead)).encode(), JSON)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [e["path"] for e in errors] == ["0.occurred_at"]
    assert "ahead of the server's clock" in errors[0]["message"]


def test_a_call_whose_rep_comes_later_is_counted_for_that_rep(server: Server) -> None:
    """The documented rule: an event may omit rep_id; the latest event naming one decides."""
    rep = f"nc-later-{uuid.uuid4().hex[:6]}"
    call = f"nc-inbound-{uuid.uuid4().hex[:6]}"
    started = _event(1, call_id=call, direction="inbound", rep_id=None)
    answered = _event(2, call_id=call, type="call.answered", rep_id=rep)
    started = {k: v for k, v in started.items() if v is not None}
    assert _post(server, json.dumps([started, answered]).encode(), JSON).status_code == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = kpis(server, rep)
        if response.status_code == 200 and response.json()["inbound_calls"] == 1:
            return
        time.sleep(0.3)
    raise AssertionError(f"the inbound call was not counted for {rep}: {response.text}")


# 9. the roster can be read back, by any key


def test_the_roster_reads_back(server: Server, tmp_path: Path) -> None:
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    team, rep = f"nc-team-{uuid.uuid4().hex[:6]}", f"nc-rep-{uuid.uuid4().hex[:6]}"
    targets = {"targets": [{"kpi": "dials", "window": "today", "value": 50}]}
    rules = {"rules": [{"rule_id": "low-connects", "kind": "idle", "idle_minutes": 20}]}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for path, body in (
            (f"/v1/teams/{team}", {"name": "一组 Team One", "timezone": "Asia/Shanghai"}),
            (f"/v1/reps/{rep}", {"name": "王芳", "team_id": team}),
            (f"/v1/teams/{team}/targets", targets),
            (f"/v1/reps/{rep}/alert-rules", rules),
        ):
            assert client.put(path, json=body, headers=admin).status_code == 200, path
    done = run_cli(["keys", "create", "--name", "tv", "--data-dir", str(server.data_dir)], tmp_path)
    viewer = {"authorization": f"Bearer {done.stdout.strip()}"}
    with httpx.Client(base_url=server.url, timeout=10, headers=viewer) as client:
        teams = client.get("/v1/teams").json()["teams"]
        assert {"team_id": team, "name": "一组 Team One"}.items() <= next(
            t for t in teams if t["team_id"] == team
        ).items()
        assert client.get(f"/v1/teams/{team}").json()["timezone"] == "Asia/Shanghai"
        assert [
            r["rep_id"] for r in client.get("/v1/reps", params={"team_id": team}).json()["reps"]
        ] == [rep]
        assert client.get(f"/v1/reps/{rep}").json()["name"] == "王芳"
        assert client.get(f"/v1/teams/{team}/targets").json()["targets"][0]["value"] == 50
        assert client.get(f"/v1/reps/{rep}/targets").json()["targets"] == []
        assert (
            client.get(f"/v1/reps/{rep}/alert-rules").json()["rules"][0]["rule_id"]
            == "low-connects"
        )
        assert client.get(f"/v1/teams/{team}/alert-rules").json()["rules"] == []
        missing = client.get("/v1/reps/nobody-here")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert client.get("/v1/teams").status_code == 200
    assert httpx.get(f"{server.url}/v1/teams", timeout=10).status_code == 401


def test_an_unsigned_event_is_told_how_to_sign(server: Server) -> None:
    body = json.dumps(_event(1)).encode()
    response = httpx.post(
        f"{server.url}/v1/events", content=body, headers={"content-type": JSON}, timeout=10
    )
    assert response.status_code == 401
    hint = response.json()["how_to_sign"]
    for part in ("webhook-id", "webhook-timestamp", "webhook-signature: v1,", "webhook_secret"):
        assert part in hint


# 2. the README's simulate and verify commands work as printed, at any hour


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## A simulated floor", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    joined = block.replace("\\\n", " ")
    return [
        line.strip()
        for line in joined.splitlines()
        if line.strip().startswith((".venv/bin/callpulse simulate", ".venv/bin/callpulse verify"))
    ]


def test_the_readmes_simulate_and_verify_commands_work(tmp_path: Path) -> None:
    commands = _readme_commands()
    assert [c.split()[1] for c in commands] == ["simulate", "verify"]
    port = free_port()
    args = ["services.cli", "run", "--port", str(port), "--data-dir", str(tmp_path / ".callpulse")]
    with process(args, _env(), tmp_path / "server.log") as proc:
        wait_http(f"http://127.0.0.1:{port}/readyz", proc=proc)
        for command in commands:
            words = shlex.split(command.replace('"$KEY"', ADMIN_KEY))
            words = [w.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for w in words]
            if words[1] == "verify":
                words += ["--wait", "30"]
            done = run_cli(words[1:], tmp_path, timeout=180)  # from the folder holding .callpulse
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    assert "exact match" in done.stdout
