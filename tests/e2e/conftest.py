"""The UI journeys' fixtures: one real Juanie server process, one real headless Chromium, API helpers.

Module-scoped, not session-scoped: the sync Playwright API keeps an event loop running in the main thread until
it is stopped, which would break every asyncio test that pytest runs after these journeys.

Every page records the URL of every request the browser makes; a journey fails if any went anywhere but the
Juanie server (no CDN, no fonts, no telemetry).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000


@dataclass
class Server:
    url: str
    port: int
    admin_token: str
    data_dir: Path

    def api(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token or self.admin_token}"}, timeout=20
        )

    def create_user(self, username: str, password: str, **extra: object) -> None:
        with self.api() as client:
            response = client.post("/api/users", json={"username": username, "password": password} | extra)
            assert response.status_code == 201, response.text

    def session_cookies(self, username: str, password: str) -> list[dict[str, object]]:
        """Sign in through the API (as the login form does) and return the cookies for a browser context."""
        response = httpx.post(
            self.url + "/api/auth/login", auth=(username, password), json={"session": True}, timeout=20
        )
        assert response.status_code == 200, response.text
        return [
            {"name": c.name, "value": c.value, "domain": "127.0.0.1", "path": "/", "sameSite": "Strict"}
            for c in response.cookies.jar
        ]


@dataclass
class RequestLog:
    """Every URL a browser context asked for."""

    urls: list[str] = field(default_factory=list)

    def foreign(self, origin: str) -> list[str]:
        allowed = (origin + "/", "data:", "about:", "blob:")
        return [u for u in self.urls if not u.startswith(allowed) and u != origin]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("juanie-ui")
    port = free_port()
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 (closed in the finalizer)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "juanie.cli.main",
            "up",
            "--foreground",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=os.environ | {"JUANIE_LOG_LEVEL": "WARNING"},
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert proc.poll() is None, f"server exited: {(data_dir / 'server.log').read_text()[-2000:]}"
            return httpx.get(url + "/readyz", timeout=2).status_code == 200

        wait_until(ready, timeout=60, interval=0.2, message="the Juanie server to become ready")
        token = (data_dir / "admin-token").read_text().strip()
        yield Server(url, port, token, data_dir)
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; install the Debian package 'chromium'")
        pytest.skip(f"{CHROMIUM} is missing; install the Debian package 'chromium'")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_page(browser, server: Server):  # type: ignore[no-untyped-def]
    """A factory: `new_page(cookies=None, width=1366, height=768, locale="en-US") -> (page, request_log)`."""
    contexts = []

    def make(
        cookies: list[dict[str, object]] | None = None,
        width: int = 1366,
        height: int = 768,
        locale: str = "en-US",
    ):  # type: ignore[no-untyped-def]
        context = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
        context.set_default_timeout(TIMEOUT_MS)
        log = RequestLog()
        context.on("request", lambda request: log.urls.append(request.url))
        if cookies:
            context.add_cookies([c | {"url": server.url} for c in _without_domain(cookies)])
        contexts.append((context, log))
        return context.new_page(), log

    yield make
    for context, log in contexts:
        context.close()
        assert not log.foreign(server.url), f"requests left the Juanie server: {log.foreign(server.url)}"


def _without_domain(cookies: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: v for k, v in c.items() if k not in ("domain", "path")} for c in cookies]


ADMIN_USER, ADMIN_PASSWORD = "root-e2e", "admin-password-e2e"


@pytest.fixture(scope="module")
def admin_cookies(server: Server):  # type: ignore[no-untyped-def]
    """Session cookies of a site administrator with a password (the bootstrap admin has only a token)."""
    server.create_user(ADMIN_USER, ADMIN_PASSWORD, is_admin=True)
    return lambda: server.session_cookies(ADMIN_USER, ADMIN_PASSWORD)
