"""Uninstall from the image's virtualenv every package callpulse does not need at run time.

requirements.lock pins every Python dependency, callpulse's and its dev tools' (one lock, each
file's hash checked by pip). The image installs the lock whole, then callpulse without
dependencies, then runs this: what stays is the closure of callpulse's own requirements (their
extras and environment markers followed), plus pip.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution, distributions

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

KEEP = {"pip"}


def runtime_closure(requires: list[str]) -> set[str]:
    """Canonical names of the installed packages these requirement lines need, transitively
    (a package's own `extra == "…"` requirements only for the extras asked of it)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = _wanted(requires, frozenset())
    while todo:
        name, extras = todo.pop()
        key = (canonicalize_name(name), extras)
        if key in seen:
            continue
        seen.add(key)
        try:
            todo += _wanted(distribution(name).requires or [], extras)
        except PackageNotFoundError:
            seen.discard(key)  # not installed: its marker left it out of this platform's lock
    return {name for name, _ in seen}


def _wanted(requires: list[str], extras: frozenset[str]) -> list[tuple[str, frozenset[str]]]:
    environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
    out = []
    for line in requires:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate(env) for env in environments):
            out.append((req.name, frozenset(req.extras)))
    return out


def main() -> None:
    """Uninstall the rest; print what went."""
    keep = runtime_closure(["callpulse"]) | KEEP
    installed = {canonicalize_name(d.metadata["Name"]) for d in distributions()}
    extra = sorted(installed - keep)
    if extra:
        subprocess.run(  # noqa: S603 - pip of this interpreter, names from its own metadata
            [sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", *extra], check=True
        )
    sys.stdout.write(f"kept {len(installed) - len(extra)} packages, removed {len(extra)}\n")


if __name__ == "__main__":
    main()
