"""`callpulse run --demo` as `make demo` runs it (no admin key configured): a live floor with
named teams and reps, targets and alert rules shows within seconds, the printed wallboard link
carries a working viewer key, and once the demo floor stops `callpulse verify` finds the API's
numbers exactly equal to the demo's ground truth."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.e2e.scenario import ROOT, SECRET, free_port, process, wait_http

pytestmark = pytest.mark.timeout(150)


def test_demo_floor_moves_then_verifies_exactly(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    env = {"CALLPULSE_WEBHOOK_SECRET": SECRET}
    args = [
        "services.cli",
        "run",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--demo",
        "--demo-minutes",
        "0.25",
    ]
    log = tmp_path / "demo.log"
    with process(args, env, log) as server:
        started = time.monotonic()
        wait_http(f"{url}/readyz", proc=server)
        printed = _printed(log, "Wallboard (")
        admin = re.search(r"created the first admin API key.*?(cp_[\w-]+)", printed, re.S)
        assert admin, printed
        headers = {"authorization": f"Bearer {admin.group(1)}"}
        _check_setup(url, printed)
        dials = 0
        while time.monotonic() - started < 10 and not dials:
            board = httpx.get(
                f"{url}/v1/leaderboard", params={"metric": "dials"}, headers=headers, timeout=5
            )
            dials = sum(row["value"] or 0 for row in board.json().get("rows", []))
            time.sleep(0.5)
        assert dials > 0, "the demo floor shows numbers within 10 seconds"
        truth = data / "demo-truth.json"
        deadline = time.monotonic() + 60
        while not truth.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert truth.exists(), "the demo writes its ground truth when it stops"
        time.sleep(2)  # the last snapshots are coalesced every 250 ms
        verify = subprocess.run(
            [
                sys.executable,
                "-m",
                "services.cli",
                "verify",
                "--url",
                url,
                "--key",
                admin.group(1),
                "--truth",
                str(truth),
                "--windows",
                "today,week,month",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "exact match" in verify.stdout + verify.stderr


def _printed(log: Path, marker: str, timeout: float = 20) -> str:
    """The server's output once it contains `marker`."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if marker in text:
            time.sleep(0.5)  # the rest of the announcement
            return log.read_text(errors="replace")
        time.sleep(0.2)
    raise AssertionError(f"the demo never printed {marker!r}: {text[-2000:]}")


def _check_setup(url: str, printed: str) -> None:
    """Item 11 of issue 16: the printed team ids and names, a viewer key in the wallboard link,
    and teams with alert rules whose reps have names and the design's targets."""
    for team_id, name in (("team-1", "North Star"), ("team-2", "长城组"), ("team-5", "Summit")):
        assert re.search(rf"^\s+{team_id}\s+{name}$", printed, re.M), printed
    link = re.search(r"^\s+(http://\S+/\?key=\S+)$", printed, re.M)
    assert link, printed
    query = parse_qs(urlsplit(link.group(1)).query)
    assert query["team"] == ["team-1"]
    viewer = {"authorization": f"Bearer {query['key'][0]}"}
    assert httpx.get(link.group(1), timeout=10).status_code == 200  # the wallboard page
    # The key reads (viewer) and cannot write.
    team = httpx.get(f"{url}/v1/teams/team-1/kpis", headers=viewer, timeout=10)
    assert team.status_code == 200, team.text
    denied = httpx.put(
        f"{url}/v1/teams/team-1/targets", headers=viewer, json={"targets": []}, timeout=10
    )
    assert denied.status_code == 403
    reps = team.json()["reps"]
    assert len(reps) == 10
    names = {rep["rep_name"] for rep in reps}
    assert any(re.search(r"[\u4e00-\u9fff]", n or "") for n in names), names  # Chinese
    assert any(re.fullmatch(r"[A-Z][a-z]+ [A-Z]\.", n or "") for n in names), names  # English
    rules = httpx.get(f"{url}/v1/teams/team-1/alert-rules", headers=viewer, timeout=10)
    assert rules.status_code == 200, rules.text
    assert {r["kind"] for r in rules.json()["rules"]} >= {"threshold", "idle"}, rules.text
    targets = {(t["kpi"], t["window"], t["target"]) for t in reps[0]["targets"]}
    assert {
        ("dials", "today", 50),
        ("avg_talk_seconds", "today", 300),
        ("conversion_rate", "today", 0.1),
    } <= targets, targets
