"""Real parts for the tests: an S3 API server, and checks for PostgreSQL and Redis.

With ``LAKE_TEST_REQUIRE_SERVICES=1`` (set by .ci/run) an unreachable service is a
test failure, never a skip.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

import pytest

REQUIRE_SERVICES = os.environ.get("LAKE_TEST_REQUIRE_SERVICES") == "1"
S3_KEY = "lake-test-key"
S3_SECRET = "lake-test-secret-Zq8"  # a recognizable secret: tests assert it never leaks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(name: str, host: str, port: int) -> None:
    """Fail (in CI) or skip (on a laptop without the server) when a service is down."""
    if reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and LAKE_TEST_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


@dataclass
class S3Server:
    endpoint: str
    host: str
    port: int

    def new_bucket(self) -> str:
        from minio import Minio

        client = Minio(f"{self.host}:{self.port}", access_key=S3_KEY, secret_key=S3_SECRET, secure=False)
        name = "lake-" + uuid.uuid4().hex[:12]
        client.make_bucket(name)
        return name
