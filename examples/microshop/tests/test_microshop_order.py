"""The order service against real user, product and payment processes (started once for this module)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from microshop import order
from microshop.config import load_settings
from microshop_support import ServiceProcess, free_port, wait_until
from starlette.testclient import TestClient


def _order_client(tmp_path: Path, **env: str) -> TestClient:
    settings = load_settings("order", {"DATA_DIR": str(tmp_path), **env})
    return TestClient(order.create_app(settings))


@pytest.fixture
def orders(order_data: Path, backends: dict[str, ServiceProcess]) -> Iterator[TestClient]:
    env = {f"{name.upper()}_URL": proc.url for name, proc in backends.items()}
    with _order_client(order_data, **env) as client:
        yield client


def test_order_is_priced_paid_and_recorded(orders: TestClient, shop: Callable, backends: dict) -> None:
    ids = shop(250, 1000)
    items = [
        {"product_id": ids["product_ids"][0], "quantity": 2},
        {"product_id": ids["product_ids"][1], "quantity": 1},
    ]
    response = orders.post("/orders", json={"user_id": ids["user_id"], "items": items})
    assert response.status_code == 201, response.text
    placed = response.json()
    assert placed["status"] == "paid"
    assert placed["total_cents"] == 2 * 250 + 1000
    assert placed["items"][0] == {"product_id": ids["product_ids"][0], "quantity": 2, "unit_price_cents": 250}
    charged = backends["payment"].get(f"/payments/{placed['payment_id']}").json()
    assert charged["order_id"] == placed["id"] and charged["amount_cents"] == 1500
    assert orders.get(f"/orders/{placed['id']}").json() == placed
    newest = orders.get("/orders?limit=1").json()
    assert newest["count"] == 1 and newest["items"][0] == placed
    assert orders.get("/orders?limit=0").status_code == 400
    metrics = orders.get("/metrics").text
    assert 'events_published_total{event="order.created",result="disabled",service="order"} 1.0' in metrics
    assert orders.get("/").json()["events"] == "disabled"


def test_trace_id_travels_to_every_service_called(orders: TestClient, shop: Callable, backends: dict) -> None:
    ids = shop(100)
    trace = f"trace-{free_port()}"
    body = {"user_id": ids["user_id"], "items": [{"product_id": ids["product_ids"][0], "quantity": 1}]}
    assert orders.post("/orders", json=body, headers={"X-Trace-Id": trace}).status_code == 201
    for proc in backends.values():
        wait_until(
            lambda proc=proc: any(line.get("trace_id") == trace for line in proc.log_lines()),
            timeout=10.0,
            what=f"trace {trace} in {proc.service} logs",
        )


def test_unknown_user_or_product_is_a_422_naming_it(orders: TestClient, shop: Callable) -> None:
    ids = shop(100)
    no_user = orders.post(
        "/orders", json={"user_id": 987654, "items": [{"product_id": ids["product_ids"][0], "quantity": 1}]}
    )
    assert no_user.status_code == 422
    assert no_user.json()["error"]["message"] == "user_id: user 987654 does not exist"
    no_product = orders.post(
        "/orders", json={"user_id": ids["user_id"], "items": [{"product_id": 987654, "quantity": 1}]}
    )
    assert no_product.status_code == 422
    assert no_product.json()["error"]["message"] == "items: product 987654 does not exist"


def test_unreachable_product_service_is_a_503_naming_it(tmp_path: Path, backends: dict, shop: Callable) -> None:
    ids = shop(100)
    dead = f"http://127.0.0.1:{free_port()}"
    with _order_client(tmp_path, USER_URL=backends["user"].url, PRODUCT_URL=dead) as client:
        response = client.post("/orders", json={"user_id": ids["user_id"], "items": [{"product_id": 1, "quantity": 1}]})
        assert response.status_code == 503
        assert response.json()["error"]["message"].startswith(f"product service unreachable at {dead}")
        assert client.get("/ready").status_code == 200  # other services being down does not make orders unready


def test_refused_payment_marks_the_order_payment_failed(
    tmp_path: Path, backends: dict, shop: Callable, spawn: Callable[..., ServiceProcess]
) -> None:
    keyless = spawn("payment")  # no PAYMENT_API_KEY: refuses to charge
    ids = shop(700)
    env = {
        "USER_URL": backends["user"].url,
        "PRODUCT_URL": backends["product"].url,
        "PAYMENT_URL": keyless.url,
    }
    with _order_client(tmp_path, **env) as client:
        body = {"user_id": ids["user_id"], "items": [{"product_id": ids["product_ids"][0], "quantity": 1}]}
        response = client.post("/orders", json=body)
        assert response.status_code == 502
        message = response.json()["error"]["message"]
        assert message.endswith("was not paid: payment service answered 503")
        order_id = int(message.split()[1])
        assert client.get(f"/orders/{order_id}").json()["status"] == "payment_failed"
