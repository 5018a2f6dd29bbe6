"""The order service: places orders. ``POST /orders``, ``GET /orders`` (newest first), ``GET /orders/{id}``.

Placing an order checks the user (``USER_URL``), prices the items from the catalogue (``PRODUCT_URL``),
records the order, charges it (``PAYMENT_URL``) and publishes ``order.created`` to RabbitMQ when ``AMQP_URL``
is set. Readiness depends on the order database only: if it also depended on the other services, one slow
service would take every order replica out of rotation and turn a partial outage into a total one. Run it with
``python -m microshop.order`` (port 8003 unless ``PORT`` says otherwise).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from microshop.clients import Downstream, json_body
from microshop.config import Settings, load_settings
from microshop.events import EventPublisher
from microshop.server import main
from microshop.service import Service, read_json
from microshop.validation import ApiError, path_id, require_currency, require_int

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS orders (
        id {id},
        user_id INTEGER NOT NULL,
        items TEXT NOT NULL,
        total_cents INTEGER NOT NULL,
        currency TEXT NOT NULL,
        status TEXT NOT NULL,
        payment_id INTEGER,
        created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
    )""",
]
MAX_ITEMS = 50
MAX_PAGE = 100
_COLUMNS = "id, user_id, items, total_cents, currency, status, payment_id, created_at"


def parse_items(body: dict[str, Any]) -> list[tuple[int, int]]:
    """``items`` as (product_id, quantity) pairs, merged per product; a 422 when malformed."""
    items = body.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise ApiError(422, "invalid_field", f"items: expected a list of 1 to {MAX_ITEMS} {{product_id, quantity}}")
    merged: dict[int, int] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ApiError(422, "invalid_field", f"items[{index}]: expected an object with product_id and quantity")
        try:
            product_id = require_int(item, "product_id", minimum=1, maximum=2**62)
            quantity = require_int(item, "quantity", minimum=1, maximum=1000)
        except ApiError as exc:
            raise ApiError(exc.status, exc.code, f"items[{index}].{exc.message}") from None
        merged[product_id] = merged.get(product_id, 0) + quantity
    return list(merged.items())


def price_order(lines: list[tuple[int, int]], products: dict[int, dict[str, Any]]) -> tuple[list[dict], int]:
    """The order lines with unit prices, and the total in cents."""
    priced = []
    total = 0
    for product_id, quantity in lines:
        unit = int(products[product_id]["price_cents"])
        priced.append({"product_id": product_id, "quantity": quantity, "unit_price_cents": unit})
        total += unit * quantity
    return priced, total


def _public(row: dict) -> dict:
    return {
        "id": row["id"],
        "user_id": row["user_id"],
        "items": json.loads(row["items"]),
        "total_cents": row["total_cents"],
        "currency": row["currency"],
        "status": row["status"],
        "payment_id": row["payment_id"],
        "created_at": str(row["created_at"]),
    }


def create_app(settings: Settings | None = None) -> Starlette:
    """The order service app; ``settings`` default to the environment."""
    svc = Service(settings or load_settings("order"), SCHEMA)
    s = svc.settings
    db = svc.db
    users = Downstream("user", s.user_url)
    products = Downstream("product", s.product_url)
    payments = Downstream("payment", s.payment_url)
    downstreams = (users, products, payments)
    events = EventPublisher(
        amqp_url=s.amqp_url,
        exchange=s.amqp_exchange,
        service=s.service,
        version=s.version,
        metrics=svc.metrics,
        logger=svc.logger,
    )
    svc.index_extra["events"] = "enabled" if events.enabled else "disabled"

    async def open_clients() -> None:
        # One pool per running app, created on its event loop; keep-alive connections are reused across calls.
        client = httpx.AsyncClient(timeout=s.http_timeout_seconds)
        for downstream in downstreams:
            downstream.client = client

    async def close_clients() -> None:
        if users.client is not None:
            await users.client.aclose()
        for downstream in downstreams:
            downstream.client = None
        await events.close()

    svc.on_startup.append(open_clients)
    svc.on_shutdown.append(close_clients)

    async def set_status(order_id: int, status: str, payment_id: int | None = None) -> dict:
        row = await db.fetch_one(
            f"UPDATE orders SET status = ?, payment_id = ? WHERE id = ? RETURNING {_COLUMNS}",
            (status, payment_id, order_id),
        )
        assert row is not None
        return _public(row)

    async def charge(order: dict) -> dict:
        """Pay for ``order``; on any failure mark it payment_failed and answer with what went wrong."""
        body = {"order_id": order["id"], "amount_cents": order["total_cents"], "currency": order["currency"]}
        try:
            response = await payments.request("POST", "/payments", json=body)
        except ApiError as exc:
            await set_status(order["id"], "payment_failed")
            raise ApiError(exc.status, exc.code, f"order {order['id']} was not paid: {exc.message}") from None
        if response.status_code not in (200, 201):
            await set_status(order["id"], "payment_failed")
            raise ApiError(
                502,
                "payment_failed",
                f"order {order['id']} was not paid: payment service answered {response.status_code}",
            )
        payment_id = json_body(response, "payment").get("id")
        if not isinstance(payment_id, int):
            await set_status(order["id"], "payment_failed")
            raise ApiError(502, "upstream_error", f"order {order['id']}: payment service answered without an id")
        return await set_status(order["id"], "paid", payment_id)

    async def create_order(request: Request) -> Response:
        body = await read_json(request)
        user_id = require_int(body, "user_id", minimum=1, maximum=2**62)
        lines = parse_items(body)
        currency = require_currency(body)
        await users.get_json(f"/users/{user_id}", missing=f"user_id: user {user_id} does not exist")
        fetched = await asyncio.gather(
            *(products.get_json(f"/products/{pid}", missing=f"items: product {pid} does not exist") for pid, _ in lines)
        )
        priced, total = price_order(lines, {int(p["id"]): p for p in fetched})
        if total < 1:
            raise ApiError(422, "invalid_order", "the order total is 0; nothing to charge")
        row = await db.fetch_one(
            "INSERT INTO orders (user_id, items, total_cents, currency, status) "
            f"VALUES (?, ?, ?, ?, 'pending') "
            f"RETURNING {_COLUMNS}",
            (user_id, json.dumps(priced), total, currency),
        )
        assert row is not None
        order = await charge(_public(row))
        svc.logger.info("order %d placed and paid", order["id"])
        await events.publish(
            "order.created",
            {
                "order_id": order["id"],
                "user_id": user_id,
                "total_cents": total,
                "currency": currency,
                "items": priced,
            },
        )
        return JSONResponse(order, status_code=201, headers={"Location": f"/orders/{order['id']}"})

    async def list_orders(request: Request) -> Response:
        raw = request.query_params.get("limit", "") or "20"
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
            raise ApiError(400, "invalid_query", f"limit: expected an integer between 1 and {MAX_PAGE}, got {raw!r}")
        rows = await db.fetch_all(f"SELECT {_COLUMNS} FROM orders ORDER BY id DESC LIMIT ?", (int(raw),))
        return JSONResponse({"items": [_public(r) for r in rows], "count": len(rows)})

    async def get_order(request: Request) -> Response:
        order_id = path_id(request.path_params["id"], "order")
        row = await db.fetch_one(f"SELECT {_COLUMNS} FROM orders WHERE id = ?", (order_id,))
        if row is None:
            raise ApiError(404, "not_found", f"order {order_id} not found")
        return JSONResponse(_public(row))

    return svc.app(
        [
            Route("/orders", create_order, methods=["POST"]),
            Route("/orders", list_orders, methods=["GET"]),
            Route("/orders/{id}", get_order, methods=["GET"]),
        ]
    )


if __name__ == "__main__":
    main("order", create_app)
