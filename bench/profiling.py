"""Optional py-spy sampling of a service under load (`python -m bench.run --profile`)."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

from bench.support import ROOT, console

PY_SPY = ROOT / ".venv" / "bin" / "py-spy"


def available() -> str | None:
    """Path of py-spy, if installed (`pip install py-spy` into the venv)."""
    if PY_SPY.exists():
        return str(PY_SPY)
    return shutil.which("py-spy")


def start(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    """Sample `pid` for `seconds` into collapsed stacks at `out` (None without py-spy)."""
    binary = available()
    if binary is None:
        return None
    command = [binary, "record", "--pid", str(pid), "--duration", str(round(seconds))]
    command += ["--rate", "200", "--format", "raw", "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summary(collapsed: Path, top: int = 25) -> str:
    """Top frames by self and by inclusive samples, from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples", "", "self %  frame"]
    lines += [f"{100 * n / total:5.1f}  {f}" for f, n in own.most_common(top)]
    lines += ["", "incl % frame"]
    lines += [f"{100 * n / total:5.1f}  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


def save(collapsed: Path, name: str) -> None:
    """Keep the collapsed stacks and their summary as bench/results/<name>-profile.*."""
    if not collapsed.exists():
        console.log(f"[yellow]py-spy wrote no profile for {name}")
        return
    results = ROOT / "bench" / "results"
    (results / f"{name}-profile.collapsed").write_text(collapsed.read_text())
    text = summary(collapsed)
    (results / f"{name}-profile.txt").write_text(text + "\n")
    console.print(text, markup=False, highlight=False)
