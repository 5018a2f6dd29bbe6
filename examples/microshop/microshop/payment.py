"""The payment service: charges for orders. ``POST /payments``, ``GET /payments/{id}``.

It needs the payment provider's credential in ``PAYMENT_API_KEY`` (delivered by the platform as a Secret);
without it the service refuses payments and stays unready. The key is never logged or returned.

``FAILURE_RATE`` and ``EXTRA_LATENCY_SECONDS`` are the demo's "bad release" knobs: a commit that raises one of
them produces a release whose canary the platform should catch and roll back.
Run it with ``python -m microshop.payment`` (port 8004 unless ``PORT`` says otherwise).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import random
import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from microshop.config import Settings, load_settings
from microshop.server import main
from microshop.service import Service, error_response, read_json
from microshop.validation import ApiError, path_id, require_currency, require_int

# Fraction of POST /payments and GET / requests answered with 500 (0.0 = healthy).
FAILURE_RATE = 0.0
# Seconds added to every POST /payments and GET / request (0.0 = healthy).
EXTRA_LATENCY_SECONDS = 0.0

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS payments (
        id {id},
        order_id INTEGER NOT NULL UNIQUE,
        amount_cents INTEGER NOT NULL,
        currency TEXT NOT NULL,
        status TEXT NOT NULL,
        authorization_code TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
    )""",
]
_COLUMNS = "id, order_id, amount_cents, currency, status, authorization_code, created_at"


def _knobs() -> tuple[float, float]:
    """Read the knobs at request time so that a test (or a debugger) can change them on a running app.

    `PAYMENT_FAULTS=off` in the environment turns them off whatever the code says — the order service's tests use
    it so that they test ordering, not the payment provider's mood.
    """
    if os.environ.get("PAYMENT_FAULTS", "").lower() == "off":
        return 0.0, 0.0
    module = sys.modules[__name__]
    return float(module.FAILURE_RATE), float(module.EXTRA_LATENCY_SECONDS)


def authorization_code(api_key: str, order_id: int, amount_cents: int) -> str:
    """The (simulated) provider's answer to a charge: derived from the credential, proving it was used."""
    digest = hmac.new(api_key.encode(), f"{order_id}:{amount_cents}".encode(), hashlib.sha256).hexdigest()
    return f"auth_{digest[:16]}"


def _public(row: dict) -> dict:
    return {
        "id": row["id"],
        "order_id": row["order_id"],
        "amount_cents": row["amount_cents"],
        "currency": row["currency"],
        "status": row["status"],
        "authorization_code": row["authorization_code"],
        "created_at": str(row["created_at"]),
    }


def create_app(settings: Settings | None = None, rng: random.Random | None = None) -> Starlette:
    """The payment service app; ``rng`` decides which requests the failure knob breaks (seed it in tests)."""
    svc = Service(settings or load_settings("payment"), SCHEMA)
    db = svc.db
    api_key = svc.settings.payment_api_key
    chooser = rng or random.Random()

    async def key_check() -> str | None:
        return None if api_key else "PAYMENT_API_KEY is not set"

    async def announce() -> None:
        if api_key:
            svc.logger.info("payment provider credential loaded from PAYMENT_API_KEY")
        else:
            svc.logger.error("PAYMENT_API_KEY is not set: payments are refused and /ready answers 503")
        rate, latency = _knobs()
        if rate > 0 or latency > 0:
            svc.logger.warning("fault knobs are on: FAILURE_RATE=%s EXTRA_LATENCY_SECONDS=%s", rate, latency)

    svc.checks.append(key_check)
    svc.on_startup.append(announce)

    async def injected_fault() -> Response | None:
        rate, latency = _knobs()
        if latency > 0:
            await asyncio.sleep(latency)
        if rate > 0 and chooser.random() < rate:
            return error_response(500, "injected_failure", "payment processor error (FAILURE_RATE)")
        return None

    async def index(request: Request) -> Response:
        return await injected_fault() or await svc.index(request)

    async def create_payment(request: Request) -> Response:
        fault = await injected_fault()
        if fault is not None:
            return fault
        if not api_key:
            raise ApiError(503, "not_configured", "payments are unavailable: PAYMENT_API_KEY is not set")
        body = await read_json(request)
        order_id = require_int(body, "order_id", minimum=1, maximum=2**62)
        amount = require_int(body, "amount_cents", minimum=1, maximum=10**9)
        currency = require_currency(body)
        existing = await db.fetch_one(f"SELECT {_COLUMNS} FROM payments WHERE order_id = ?", (order_id,))
        if existing is not None:
            if existing["amount_cents"] != amount or existing["currency"] != currency:
                raise ApiError(
                    409,
                    "conflict",
                    f"order {order_id} was already paid with a different amount (payment {existing['id']})",
                )
            return JSONResponse(_public(existing), status_code=200)  # idempotent retry
        row = await db.fetch_one(
            f"INSERT INTO payments (order_id, amount_cents, currency, status, authorization_code) "
            f"VALUES (?, ?, ?, 'captured', ?) RETURNING {_COLUMNS}",
            (order_id, amount, currency, authorization_code(api_key, order_id, amount)),
        )
        assert row is not None
        svc.logger.info("captured payment %d for order %d", row["id"], order_id)
        return JSONResponse(_public(row), status_code=201, headers={"Location": f"/payments/{row['id']}"})

    async def get_payment(request: Request) -> Response:
        payment_id = path_id(request.path_params["id"], "payment")
        row = await db.fetch_one(f"SELECT {_COLUMNS} FROM payments WHERE id = ?", (payment_id,))
        if row is None:
            raise ApiError(404, "not_found", f"payment {payment_id} not found")
        return JSONResponse(_public(row))

    return svc.app(
        [
            Route("/payments", create_payment, methods=["POST"]),
            Route("/payments/{id}", get_payment, methods=["GET"]),
        ],
        index=index,
    )


if __name__ == "__main__":
    main("payment", create_app)
