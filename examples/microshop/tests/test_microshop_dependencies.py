"""Real PostgreSQL, Redis and RabbitMQ (each skipped with a reason when not reachable on 127.0.0.1), and the
degraded behaviour when a configured dependency is down (always run: it needs nothing but a closed port)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from microshop import order, payment, product, user
from microshop.config import load_settings
from microshop_support import ServiceProcess, free_port, wait_until
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient


def _metric(client: TestClient, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


# -- PostgreSQL ----------


def test_all_services_work_on_postgresql(postgres_url: str) -> None:
    env = {"DATABASE_URL": postgres_url, "PAYMENT_API_KEY": "sk_pg"}
    with TestClient(user.create_app(load_settings("user", env))) as users:
        assert users.get("/ready").status_code == 200
        made = users.post("/users", json={"email": "pg@shop.test", "name": "Pg"})
        assert made.status_code == 201
        assert users.get(f"/users/{made.json()['id']}").json()["email"] == "pg@shop.test"
        assert users.post("/users", json={"email": "pg@shop.test", "name": "Again"}).status_code == 409
    with TestClient(product.create_app(load_settings("product", env))) as products:
        pid = products.post("/products", json={"name": "mug", "price_cents": 900}).json()["id"]
        assert products.get(f"/products/{pid}").json()["price_cents"] == 900
        assert products.get("/products").json()["count"] == 1
    with TestClient(payment.create_app(load_settings("payment", env))) as payments:
        paid = payments.post("/payments", json={"order_id": 1, "amount_cents": 900})
        assert paid.status_code == 201
        assert payments.post("/payments", json={"order_id": 1, "amount_cents": 900}).json()["id"] == paid.json()["id"]
    with TestClient(order.create_app(load_settings("order", env))) as orders:
        assert orders.get("/ready").status_code == 200
        assert orders.get("/orders/1").status_code == 404


def test_data_survives_a_restart_of_the_process_on_postgresql(
    postgres_url: str, spawn: Callable[..., ServiceProcess]
) -> None:
    first = spawn("user", {"DATABASE_URL": postgres_url})
    made = httpx.post(first.url + "/users", json={"email": "restart@shop.test", "name": "R"}, timeout=10).json()
    assert first.terminate() == 0
    assert "postgresql://postgres@127.0.0.1:5432/" in first.log_text()
    second = spawn("user", {"DATABASE_URL": postgres_url})
    assert second.get(f"/users/{made['id']}").json()["email"] == "restart@shop.test"


def test_lost_postgresql_connection_is_reopened(postgres_url: str, postgres_admin_url: str) -> None:
    import psycopg

    env = {"DATABASE_URL": postgres_url}
    with TestClient(user.create_app(load_settings("user", env))) as users:
        made = users.post("/users", json={"email": "reconnect@shop.test", "name": "R"}).json()
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (postgres_url.rsplit("/", 1)[1],),
            ).fetchone()
        assert killed is not None and killed[0] >= 1
        first = users.get(f"/users/{made['id']}")
        assert first.status_code in (200, 503)  # the request that finds the dead connection may fail
        wait_until(lambda: users.get(f"/users/{made['id']}").status_code == 200, timeout=15, what="reconnect")
        assert users.get("/ready").status_code == 200


def test_unreachable_postgresql_leaves_the_service_alive_but_unready(tmp_path: Path) -> None:
    url = f"postgresql://postgres:topsecret@127.0.0.1:{free_port()}/shop"
    settings = load_settings("user", {"DATABASE_URL": url})
    with TestClient(user.create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["problems"] == ["database is unreachable"]
        failed = client.post("/users", json={"email": "a@b.c", "name": "A"})
        assert failed.status_code == 503
        assert "topsecret" not in failed.text
        assert _metric(client, "dependency_up", dependency="database") == 0


# -- Redis ----------


@pytest.fixture
def redis_prefix(redis_url: str, run_id: str) -> Iterator[str]:
    import redis

    prefix = f"microshop-test-{run_id}-{free_port()}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_product_cache_is_shared_through_redis(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    import redis

    common = {"REDIS_URL": redis_url, "REDIS_PREFIX": redis_prefix, "CACHE_TTL_SECONDS": "60"}
    app_a = product.create_app(load_settings("product", {**common, "DATA_DIR": str(tmp_path / "a")}))
    app_b = product.create_app(load_settings("product", {**common, "DATA_DIR": str(tmp_path / "b")}))
    with TestClient(app_a) as a, TestClient(app_b) as b:
        assert a.get("/").json()["cache"] == "redis"
        pid = a.post("/products", json={"name": "lamp", "price_cents": 4200}).json()["id"]
        assert a.get(f"/products/{pid}").headers["X-Cache"] == "miss"
        # Replica b has its own (empty) database: it can only answer from the shared cache.
        from_b = b.get(f"/products/{pid}")
        assert from_b.status_code == 200 and from_b.headers["X-Cache"] == "hit"
        assert from_b.json()["name"] == "lamp"
        assert _metric(b, "cache_lookups_total", backend="redis", result="hit") == 1
        assert _metric(a, "cache_lookups_total", backend="redis", result="miss") == 1
    ttl_ms = redis.Redis.from_url(redis_url).pttl(f"{redis_prefix}product:{pid}")
    assert 0 < ttl_ms <= 60_000


def test_unreachable_redis_falls_back_to_the_in_process_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "DATA_DIR": str(tmp_path)}
    with TestClient(product.create_app(load_settings("product", env))) as client:
        pid = client.post("/products", json={"name": "mug", "price_cents": 900}).json()["id"]
        assert client.get(f"/products/{pid}").headers["X-Cache"] == "miss"
        assert client.get(f"/products/{pid}").headers["X-Cache"] == "hit"
        assert _metric(client, "cache_lookups_total", backend="memory", result="hit") == 1
        assert _metric(client, "dependency_up", dependency="redis") == 0
    warnings = [r.getMessage() for r in caplog.records if "falling back to the in-process cache" in r.getMessage()]
    assert len(warnings) == 1  # said once, not once per request


# -- RabbitMQ ----------


@pytest.fixture
def exchange_queue(amqp_url: str, run_id: str) -> Iterator[tuple[str, Callable[[], dict | None]]]:
    """A per-run exchange with a private queue bound to order events; yields (exchange, fetch_one)."""
    import pika

    exchange = f"microshop-test-{run_id}"
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type="topic", durable=True)
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(queue=queue, exchange=exchange, routing_key="order.*")

    def fetch_one() -> dict | None:
        method, properties, body = channel.basic_get(queue=queue, auto_ack=True)
        if method is None:
            return None
        return {"routing_key": method.routing_key, "type": properties.type, "body": json.loads(body)}

    try:
        yield exchange, fetch_one
    finally:
        channel.exchange_delete(exchange=exchange)
        connection.close()


def _order_env(backends: dict[str, ServiceProcess], data: Path, **extra: str) -> dict[str, str]:
    return {f"{n.upper()}_URL": p.url for n, p in backends.items()} | {"DATA_DIR": str(data)} | extra


def test_order_created_event_is_published_to_rabbitmq(
    amqp_url: str,
    exchange_queue: tuple[str, Callable[[], dict | None]],
    backends: dict[str, ServiceProcess],
    order_data: Path,
    shop: Callable[..., dict],
) -> None:
    exchange, fetch_one = exchange_queue
    ids = shop(350)
    env = _order_env(backends, order_data, AMQP_URL=amqp_url, AMQP_EXCHANGE=exchange)
    with TestClient(order.create_app(load_settings("order", env))) as orders:
        assert orders.get("/").json()["events"] == "enabled"
        body = {"user_id": ids["user_id"], "items": [{"product_id": ids["product_ids"][0], "quantity": 2}]}
        placed = orders.post("/orders", json=body, headers={"X-Trace-Id": "amqp-trace-1"})
        assert placed.status_code == 201, placed.text
        assert _metric(orders, "events_published_total", event="order.created", result="published") == 1
    message = wait_until(fetch_one, timeout=15, what="order.created on the test queue")
    assert message["routing_key"] == "order.created" and message["type"] == "order.created"
    event = message["body"]
    assert event["event"] == "order.created" and event["source"] == "order" and event["trace_id"] == "amqp-trace-1"
    assert event["data"]["order_id"] == placed.json()["id"] and event["data"]["total_cents"] == 700


def test_unreachable_broker_does_not_fail_the_order(
    backends: dict[str, ServiceProcess], order_data: Path, shop: Callable[..., dict]
) -> None:
    ids = shop(120)
    env = _order_env(backends, order_data, AMQP_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    with TestClient(order.create_app(load_settings("order", env))) as orders:
        started = time.monotonic()
        body = {"user_id": ids["user_id"], "items": [{"product_id": ids["product_ids"][0], "quantity": 1}]}
        placed = orders.post("/orders", json=body)
        assert placed.status_code == 201 and placed.json()["status"] == "paid"
        assert time.monotonic() - started < 20
        assert _metric(orders, "events_published_total", event="order.created", result="failed") == 1
        assert _metric(orders, "dependency_up", dependency="amqp") == 0
