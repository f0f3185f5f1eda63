"""deploy/Dockerfile: reproducible (an exact base image, every package from the hashed lock),
non-root, the step that drops the lock's dev tools keeps what callpulse needs, and every
command the containers run exists."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from types import ModuleType

import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs
from typer.testing import CliRunner

from services.cli import app
from tests.deploy.tools import DEPLOY, ROOT, load

DOCKERFILE = DEPLOY / "Dockerfile"


def test_the_base_image_is_an_exact_release() -> None:
    text = DOCKERFILE.read_text()
    [default] = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    # python:<major>.<minor>.<patch>-slim-<debian release>, optionally @sha256:<digest>
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", default), default
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert stages == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert "imagetools inspect" in text  # how to refresh it is written next to it


def test_dependencies_come_from_the_hashed_lock() -> None:
    text = DOCKERFILE.read_text()
    assert "COPY requirements.lock" in text
    assert re.search(
        r"^RUN pip install --require-hashes --no-deps -r requirements\.lock$", text, re.M
    )
    assert re.search(r"pip install --no-deps --no-build-isolation \.", text)
    assert "pip check" in text
    lock = (ROOT / "requirements.lock").read_text()
    assert "--hash=sha256:" in lock
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {"!requirements.lock", "!schemas/", "!services/", "!pyproject.toml"} <= set(ignore)
    assert "!deploy/prune_image.py" in ignore


def test_the_image_runs_callpulse_as_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^USER 10001", text, re.MULTILINE)
    assert 'ENTRYPOINT ["callpulse"]' in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "callpulse" in project["project"]["scripts"]
    # The wallboard's files ship in the wheel the image installs.
    assert "static/*" in project["tool"]["setuptools"]["package-data"]["services.api"]


def prune_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("prune_image", DEPLOY / "prune_image.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_prune_step_keeps_callpulse_s_runtime_closure_only() -> None:
    """Run against this virtualenv (the same lock): callpulse's runtime dependencies (from
    pyproject.toml, as the built wheel declares them) and theirs stay, the dev tools go."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requires = project["project"]["dependencies"]
    keep = prune_module().runtime_closure(requires)
    direct = {re.split(r"[<>=\[; ]", r)[0].lower() for r in requires}
    assert direct <= keep, direct - keep
    assert {"starlette", "pydantic-core", "httptools", "mode-streaming"} <= keep  # transitive
    for dev in ("pytest", "mypy", "ruff", "hypothesis", "vulture", "kubernetes-validate"):
        assert dev not in keep, dev


def deploy_commands() -> dict[str, list[str]]:
    """The `callpulse` arguments each container of compose.yaml and k8s/ runs."""
    commands: dict[str, list[str]] = {}
    for name, service in load("compose.yaml")["services"].items():
        if str(service.get("image", "")).startswith("${CALLPULSE_IMAGE"):
            commands[f"compose {name}"] = [str(a) for a in service["command"]]
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] in ("Deployment", "StatefulSet", "Job"):
                for container in doc["spec"]["template"]["spec"]["containers"]:
                    commands[f"k8s {doc['metadata']['name']}"] = [str(a) for a in container["args"]]
    return commands


def test_every_command_the_deploy_files_run_exists() -> None:
    """The image's entrypoint is `callpulse`: each command and option the containers pass
    parses (click refuses an unknown command or option before it shows --help)."""
    commands = deploy_commands()
    assert {"compose topics", "compose ingest", "compose api", "k8s topics"} <= set(commands)
    runner = CliRunner()
    for where, args in commands.items():
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, f"{where}: callpulse {' '.join(args)}\n{result.output}"
    assert runner.invoke(app, ["ingest", "--no-such-option", "--help"]).exit_code != 0
