"""What the deploy checks share: paths, the external checkers, and the names the code defines.

The checkers are the ones each ecosystem uses, installed by `make test` (no internet needed at
test time): promtool and amtool (Debian, deploy/local/apt-deps.sh), kustomize (Go module proxy)
and the AsyncAPI parser (npm) by `make deploy-tools`, kubernetes-validate (PyPI, in the lock,
with the Kubernetes schemas inside), and the Compose Specification schema vendored in vendor/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs

from services.aggregator.config import AggregatorSettings
from services.api.config import ApiSettings
from services.api.metrics import SERIES
from services.ingest.config import IngestSettings
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
HERE = Path(__file__).resolve().parent
TOOLS = ROOT / ".cache" / "deploy-tools"
NON_CALLPULSE_METRICS = {"up"}


def tool(name: str, how: str) -> str:
    """A checker's path; missing: a skip locally, a failure under CI=true."""
    found = shutil.which(name) or shutil.which(name, path=str(TOOLS / "bin"))
    if found:
        return found
    message = f"{name} is not installed: {how}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def run(*args: str | Path, cwd: Path | None = None) -> str:
    """Run a checker; its output, asserting it exited 0."""
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def load(path: str) -> Any:
    """A YAML file under deploy/."""
    return yaml.safe_load((DEPLOY / path).read_text())


def known_settings() -> set[str]:
    """Every `CALLPULSE_*` environment variable one of the three services reads."""
    fields: set[str] = set()
    for settings in (ApiSettings, IngestSettings, AggregatorSettings):
        fields |= set(settings.model_fields)
    return {f"CALLPULSE_{name}" for name in fields}


def metric_names_in_code() -> set[str]:
    """Every metric the services can expose, found in their source.

    Literal names (`"callpulse_…"`) plus the business families that services/api/metrics.py
    builds as `<prefix>_<suffix>`: prefixes from `_families("callpulse_…"`, suffixes from SERIES
    (which follows the KPI declaration, schemas.kpis.KPI_SPECS).
    """
    sources = {p: p.read_text() for p in (ROOT / "services").rglob("*.py")}
    literals = {m for text in sources.values() for m in re.findall(r'"(callpulse_\w+)"', text)}
    api = (ROOT / "services/api/metrics.py").read_text()
    prefixes = set(re.findall(r'_families\(\s*"(callpulse_\w+)"', api))
    suffixes = {suffix for suffix, _help in SERIES.values()}
    assert prefixes == {"callpulse_team", "callpulse_rep"}
    assert {"dials", "connect_ratio", "conversion_ratio", "csat_average"} <= suffixes
    names = literals | {f"{p}_{s}" for p in prefixes for s in suffixes}
    exposed = set()
    for name in names:
        base = name.removesuffix("_total")  # prometheus_client adds `_total` to counters
        exposed |= {name, base, f"{base}_total", f"{base}_created"}
        exposed |= {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    return exposed | NON_CALLPULSE_METRICS


def referenced(expr: str) -> set[str]:
    """The callpulse metric names a PromQL expression uses (and `up`)."""
    names = set(re.findall(r"\bcallpulse_[a-z0-9_]+\b", expr))
    return names | (NON_CALLPULSE_METRICS & set(re.findall(r"\b(\w+)\{", expr)))
