"""The user and product services' handlers, served in-process by Starlette's TestClient on tmp SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from microshop import product, user
from microshop.config import load_settings
from starlette.testclient import TestClient


@pytest.fixture
def users(tmp_path: Path) -> Iterator[TestClient]:
    app = user.create_app(load_settings("user", {"DATA_DIR": str(tmp_path), "SERVICE_VERSION": "v1.2.3"}))
    with TestClient(app) as client:
        yield client


@pytest.fixture
def products(tmp_path: Path) -> Iterator[TestClient]:
    app = product.create_app(load_settings("product", {"DATA_DIR": str(tmp_path), "CACHE_TTL_SECONDS": "60"}))
    with TestClient(app) as client:
        yield client


def _metric(client: TestClient, name: str, **labels: str) -> float:
    """The value of one sample in the service's /metrics output (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_probes_index_and_version_header(users: TestClient) -> None:
    health = users.get("/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert health.headers["X-Service-Version"] == "v1.2.3"
    assert users.get("/ready").json() == {"status": "ready"}
    assert users.get("/").json() == {"service": "user", "version": "v1.2.3"}
    assert users.get("/nope").headers["X-Service-Version"] == "v1.2.3"


def test_user_is_created_then_read_back(users: TestClient) -> None:
    created = users.post("/users", json={"email": "Ada@Example.org", "name": "Ada"})
    assert created.status_code == 201
    body = created.json()
    assert body["email"] == "ada@example.org" and body["name"] == "Ada"
    assert created.headers["Location"] == f"/users/{body['id']}"
    fetched = users.get(f"/users/{body['id']}")
    assert fetched.status_code == 200 and fetched.json() == body


def test_duplicate_email_is_a_conflict(users: TestClient) -> None:
    assert users.post("/users", json={"email": "a@b.c", "name": "A"}).status_code == 201
    again = users.post("/users", json={"email": "A@B.C", "name": "Other"})
    assert again.status_code == 409
    assert again.json()["error"]["message"] == "a user with email 'a@b.c' already exists"


def test_bad_user_requests_get_clear_errors(users: TestClient) -> None:
    bad_json = users.post("/users", content=b"{", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "invalid_json"
    missing = users.post("/users", json={"email": "a@b.c"})
    assert missing.status_code == 422
    assert missing.json()["error"]["message"] == "name: expected a non-empty string, got null"
    assert users.get("/users/999").json()["error"]["message"] == "user 999 not found"
    assert users.delete("/users/1").status_code == 405


def test_request_metrics_use_route_templates(users: TestClient) -> None:
    for _ in range(3):
        users.get("/users/12345")
    assert _metric(users, "http_requests_total", method="GET", path="/users/{id}", status="404") == 3
    assert _metric(users, "http_request_duration_seconds_count", method="GET", path="/users/{id}") == 3
    assert _metric(users, "http_requests_total", path="/users/12345") == 0


def test_trace_id_is_echoed_back_and_generated_when_absent(users: TestClient) -> None:
    assert users.get("/health", headers={"X-Trace-Id": "t-1"}).headers["X-Trace-Id"] == "t-1"
    assert len(users.get("/health").headers["X-Trace-Id"]) == 32


def test_products_are_created_listed_and_read(products: TestClient) -> None:
    ids = [
        products.post("/products", json={"name": name, "price_cents": price}).json()["id"]
        for name, price in (("mug", 900), ("tee", 1900))
    ]
    listing = products.get("/products").json()
    assert [p["name"] for p in listing["items"]] == ["mug", "tee"] and listing["count"] == 2
    assert products.get("/products?limit=1").json()["count"] == 1
    assert products.get("/products?limit=0").status_code == 400
    assert products.get(f"/products/{ids[1]}").json()["price_cents"] == 1900
    assert products.post("/products", json={"name": "x", "price_cents": -1}).status_code == 422


def test_product_reads_are_cached_and_counted(products: TestClient) -> None:
    pid = products.post("/products", json={"name": "mug", "price_cents": 900}).json()["id"]
    first = products.get(f"/products/{pid}")
    second = products.get(f"/products/{pid}")
    assert first.headers["X-Cache"] == "miss" and second.headers["X-Cache"] == "hit"
    assert first.json() == second.json()
    assert _metric(products, "cache_lookups_total", backend="memory", result="miss") == 1
    assert _metric(products, "cache_lookups_total", backend="memory", result="hit") == 1
    # A missing product is a miss every time, and is not cached as a hit.
    assert products.get("/products/424242").status_code == 404
    assert products.get("/products/424242").status_code == 404
    assert _metric(products, "cache_lookups_total", result="miss") == 3
    assert products.get("/").json()["cache"] == "memory"


def test_database_that_cannot_be_opened_makes_the_service_unready_not_dead(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    settings = load_settings("user", {"DATABASE_URL": f"sqlite:///{blocker}/sub/user.db"})
    with TestClient(user.create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["problems"] == ["database is unreachable"]
        failed = client.get("/users/1")
        assert failed.status_code == 503 and failed.json()["error"]["code"] == "database_unavailable"
