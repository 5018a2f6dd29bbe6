"""Helpers for the login and webhook attack tests: a real server per backend, clients that connect from chosen
addresses, metric values, old-format password hashes.

Linux routes all of 127.0.0.0/8 to the loopback interface, so a client bound to 127.0.0.23 reaches the server on
127.0.0.1 and the server sees 127.0.0.23 as the client's address: two "machines" without a proxy header to trust.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.server_support import Server, start_server


@dataclass
class Target:
    server: Server
    database_url: str


def serve(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The body of a fixture parametrised with "sqlite" / "postgresql": a `juanie up` server on that backend."""
    data_dir = tmp_path_factory.mktemp(f"auth-{request.param}") / "data"
    if request.param == "sqlite":
        url = f"sqlite:///{(data_dir / 'juanie.db').resolve()}"
    else:
        url = request.getfixturevalue("postgres").fresh()
    server = start_server(data_dir, {"JUANIE_DATABASE_URL": url})
    try:
        yield Target(server, url)
    finally:
        server.stop()
        try:
            os.killpg(server.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def client_from(address: str) -> httpx.Client:
    """An HTTP client whose connections come from `address` (any 127.x.y.z)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60)


def login(server: Server, username: str, password: str, address: str) -> httpx.Response:
    with client_from(address) as client:
        return client.post(server.url + "/api/auth/login", auth=(username, password), json={"token_name": "t"})


def counter(metrics_text: str, name: str, **labels: str) -> float:
    """The value of one labelled series in Prometheus text (0 when absent)."""
    want = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "} "
    for line in metrics_text.splitlines():
        if line.startswith(want):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def scrypt_hash(password: str) -> str:
    """A password hash in the format Juanie stored before argon2id: `scrypt$<salt>$<digest>` (n=2^14, r=8, p=1)."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()
