"""Shared fixtures of microshop's tests: the import path, real service processes, and the optional real
dependencies (PostgreSQL, Redis, RabbitMQ on 127.0.0.1), each skipped with a reason when not reachable."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import httpx  # noqa: E402
from microshop_support import ServiceProcess, port_open, start_service, wait_until  # noqa: E402


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start real service processes; every one is stopped (its whole process group) when the test ends."""
    started: list[ServiceProcess] = []

    def _spawn(service: str, env: dict[str, str] | None = None, wait_healthy: bool = True) -> ServiceProcess:
        proc = start_service(service, tmp_path, env or {}, wait_healthy=wait_healthy)
        started.append(proc)
        return proc

    yield _spawn
    for proc in started:
        proc.kill()


@pytest.fixture(scope="session")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceProcess]]:
    """Real user, product and payment processes shared by the order tests (started in parallel, once)."""
    workdir = tmp_path_factory.mktemp("order-backends")
    procs: dict[str, ServiceProcess] = {}
    envs = {name: {"PAYMENT_API_KEY": "sk_test_order", "PAYMENT_FAULTS": "off"} if name == "payment" else {}
            for name in ("user", "product", "payment")}  # fmt: skip
    try:
        for name, env in envs.items():
            procs[name] = start_service(name, workdir, env, wait_healthy=False)
        for name, proc in list(procs.items()):
            try:
                wait_until(proc.healthy, timeout=30.0, what=f"{proc.service} /health")
            except AssertionError:
                if not proc.lost_its_port():
                    raise
                proc.kill()  # another process took the port it was given: start it again on a new one
                procs[name] = start_service(name, workdir, envs[name])
        yield procs
    finally:
        for proc in procs.values():
            proc.kill()


@pytest.fixture(scope="session")
def order_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One order database for every test that charges the shared payment process: payments are idempotent per
    order id, so order ids must not restart from 1 in each test."""
    return tmp_path_factory.mktemp("order-data")


@pytest.fixture
def shop(backends: dict[str, ServiceProcess]) -> Callable[..., dict]:
    """Create a user and products on the real services; returns their ids."""

    def _make(*prices: int) -> dict:
        email = f"buyer-{uuid.uuid4().hex[:12]}@shop.test"
        user = httpx.post(backends["user"].url + "/users", json={"email": email, "name": "B"}, timeout=10)
        assert user.status_code == 201, user.text
        products = []
        for price in prices:
            made = httpx.post(
                backends["product"].url + "/products",
                json={"name": f"p{price}", "price_cents": price},
                timeout=10,
            )
            assert made.status_code == 201, made.text
            products.append(made.json()["id"])
        return {"user_id": user.json()["id"], "product_ids": products}

    return _make


@pytest.fixture(scope="session")
def run_id() -> str:
    """A token unique to this test run, for database names, key prefixes and exchange names."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    if not port_open("127.0.0.1", 5432):
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    try:
        import psycopg

        psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3).close()
    except Exception as exc:  # a server that refuses trust auth is as good as absent here
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 does not accept user postgres without a password: {exc}")
    return "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: str, run_id: str) -> Iterator[str]:
    """A fresh database for this test run, dropped at the end."""
    import psycopg

    name = f"microshop_test_{run_id}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not port_open("127.0.0.1", 6379):
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def amqp_url() -> str:
    if not port_open("127.0.0.1", 5672):
        pytest.skip("RabbitMQ is not reachable on 127.0.0.1:5672")
    url = "amqp://guest:guest@127.0.0.1:5672/%2F"
    try:
        import pika

        pika.BlockingConnection(pika.URLParameters(url)).close()
    except Exception as exc:
        pytest.skip(f"RabbitMQ on 127.0.0.1:5672 does not accept guest/guest: {type(exc).__name__}")
    return url


def pytest_configure(config: pytest.Config) -> None:
    # Newer Starlette versions nudge TestClient users towards another HTTP client; the behaviour is unchanged.
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(autouse=True)
def _payment_faults_off(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the payment service's own tests exercise its fault knobs; everything else tests its own logic."""
    if "payment" not in request.module.__name__:
        monkeypatch.setenv("PAYMENT_FAULTS", "off")
