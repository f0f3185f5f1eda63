"""Brokers of a test's own, started with deploy/local/kafka.sh on free ports in a temp dir:
one with a SASL_SSL listener, or a KRaft cluster of several."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.scenario import ROOT, free_port

SASL_USERNAME = "callpulse"
SASL_PASSWORD = "callpulse-secret"  # kafka.sh's default SCRAM user


def free_block(size: int) -> int:
    """The first of `size` consecutive free loopback ports (kafka.sh lays a node out on 3)."""
    for _ in range(50):
        base = free_port()
        if base + size >= 65536:
            continue
        try:
            for port in range(base, base + size):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {size} consecutive free ports")


@dataclass(frozen=True)
class LocalKafka:
    """A running kafka.sh deployment and how to reach it."""

    home: Path
    port: int
    brokers: int
    sasl_ssl: bool
    client_auth: str = "none"

    def env(self) -> dict[str, str]:
        """kafka.sh's environment for this deployment."""
        return {
            **os.environ,
            "CALLPULSE_KAFKA_PORT": str(self.port),
            "CALLPULSE_KAFKA_DIR": str(self.home),
            "CALLPULSE_KAFKA_BROKERS": str(self.brokers),
            "CALLPULSE_KAFKA_SASL_SSL": "1" if self.sasl_ssl else "0",
            "CALLPULSE_KAFKA_SSL_CLIENT_AUTH": self.client_auth,
        }

    def script(self, *args: str) -> str:
        """Run kafka.sh ARGS; its output, or an error with it."""
        result = subprocess.run(
            [str(ROOT / "deploy/local/kafka.sh"), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"kafka.sh {' '.join(args)}: {result.stdout}{result.stderr}")
        return result.stdout

    def _ports(self, offset: int) -> str:
        step = 3 if self.brokers > 1 else 0
        return ",".join(f"127.0.0.1:{self.port + step * i + offset}" for i in range(self.brokers))

    @property
    def bootstrap(self) -> str:
        """PLAINTEXT listeners, every node."""
        return self._ports(0)

    @property
    def sasl_bootstrap(self) -> str:
        """SASL_SSL listeners, every node."""
        return self._ports(2)

    @property
    def ca(self) -> Path:
        """The CA that signed the brokers' certificate."""
        return self.home / "tls" / "ca.pem"

    def sasl_env(
        self, password: str = SASL_PASSWORD, ca: Path | None = None, *, client_cert: bool = True
    ) -> dict[str, str]:
        """The services' settings for SASL_SSL with SCRAM-SHA-512 (and kafka.sh's client
        certificate, for mTLS)."""
        tls = self.home / "tls"
        cert = {
            "CALLPULSE_KAFKA_SSL_CERTFILE": str(tls / "client.pem"),
            "CALLPULSE_KAFKA_SSL_KEYFILE": str(tls / "client.key"),
        }
        return {
            "CALLPULSE_KAFKA_BOOTSTRAP": self.sasl_bootstrap,
            "CALLPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "CALLPULSE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "CALLPULSE_KAFKA_SASL_USERNAME": SASL_USERNAME,
            "CALLPULSE_KAFKA_SASL_PASSWORD": password,
            "CALLPULSE_KAFKA_SSL_CAFILE": str(ca or self.ca),
            **(cert if client_cert else {}),
        }


@contextmanager
def local_kafka(
    home: Path, *, brokers: int = 1, sasl_ssl: bool = False, client_auth: str = "none"
) -> Iterator[LocalKafka]:
    """Start the deployment, yield it, stop it (whatever the test did to its nodes)."""
    kafka = LocalKafka(home, free_block(3 * brokers), brokers, sasl_ssl, client_auth)
    kafka.script("start")
    try:
        yield kafka
    finally:
        kafka.script("stop")
