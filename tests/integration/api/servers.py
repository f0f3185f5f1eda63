"""Real servers for integration tests: an ASGI app under uvicorn, and external binaries
(Prometheus, Alertmanager) from Debian packages, each on a free local port."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.conftest import IN_CI


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_binary(path: str, package: str) -> str:
    """`path` if it is an executable; otherwise skip locally and fail under CI=true."""
    if os.access(path, os.X_OK):
        return path
    message = f"{path} is missing: apt-get install {package}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app (its lifespan included) on a free port; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # startup failed: raise its error
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextmanager
def process(argv: Sequence[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process, its output in `log`; terminated (then killed) at the end."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def wait_ready(
    url: str, proc: subprocess.Popen[bytes], log: Path, *, deadline: float = 60.0
) -> None:
    """Poll `url` until it answers 200; fail with the process log if the process exits."""
    async with httpx.AsyncClient(timeout=5) as client, asyncio.timeout(deadline):
        while True:
            if proc.poll() is not None:
                output = await asyncio.to_thread(log.read_text)
                pytest.fail(f"{proc.args!r} exited with {proc.returncode}:\n{output}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
