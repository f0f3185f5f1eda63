"""The wallboard's pure JavaScript (targets, pace, alert chips, language tags) under Node's own
test runner: `node --test` on tests/unit/wallboard/js/, with the glossary the server serves."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from schemas.glossary import GLOSSARY
from tests.conftest import IN_CI

HERE = Path(__file__).resolve().parent


def test_the_wallboard_modules_pass_their_node_tests(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        message = "Node.js is not installed (the wallboard's JavaScript unit tests need it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    glossary = tmp_path / "glossary.json"
    glossary.write_text(GLOSSARY.model_dump_json())
    done = subprocess.run(
        [node, "--test", *sorted(str(p) for p in (HERE / "js").glob("*.test.mjs"))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CALLPULSE_GLOSSARY_JSON": str(glossary)},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout, done.stdout[-2000:]
