"""The product service: the catalogue. ``POST /products``, ``GET /products``, ``GET /products/{id}``.

Single-product reads go through a cache (Redis when ``REDIS_URL`` is set, in-process otherwise) because the
order service reads every product of every order; ``cache_lookups_total{result="hit"|"miss"}`` shows how well
it works. Run it with ``python -m microshop.product`` (port 8002 unless ``PORT`` says otherwise).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from microshop.cache import ProductCache
from microshop.config import Settings, load_settings
from microshop.server import main
from microshop.service import Service, read_json
from microshop.validation import ApiError, path_id, require_int, require_str

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS products (
        id {id},
        name TEXT NOT NULL,
        price_cents INTEGER NOT NULL,
        created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
    )""",
]
MAX_PAGE = 100


def _public(row: dict) -> dict:
    return {
        "id": row["id"],
        "name": row["name"],
        "price_cents": row["price_cents"],
        "created_at": str(row["created_at"]),
    }


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return 50
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ApiError(400, "invalid_query", f"limit: expected an integer between 1 and {MAX_PAGE}, got {raw!r}")
    return int(raw)


def create_app(settings: Settings | None = None) -> Starlette:
    """The product service app; ``settings`` default to the environment."""
    svc = Service(settings or load_settings("product"), SCHEMA)
    s = svc.settings
    db = svc.db
    cache = ProductCache(
        redis_url=s.redis_url,
        prefix=f"{s.redis_prefix}product:",
        ttl=s.cache_ttl_seconds,
        metrics=svc.metrics,
        logger=svc.logger,
    )
    svc.index_extra["cache"] = "redis" if s.redis_url else "memory"

    async def close_cache() -> None:
        await cache.close()

    async def warm_cache_check() -> None:
        await cache.ping()

    svc.on_startup.append(warm_cache_check)
    svc.on_shutdown.append(close_cache)

    async def create_product(request: Request) -> Response:
        body = await read_json(request)
        name = require_str(body, "name", max_length=200)
        price = require_int(body, "price_cents", minimum=0, maximum=10**9)
        row = await db.fetch_one(
            "INSERT INTO products (name, price_cents) VALUES (?, ?) RETURNING id, name, price_cents, created_at",
            (name, price),
        )
        assert row is not None
        product = _public(row)
        svc.logger.info("created product %d", product["id"])
        return JSONResponse(product, status_code=201, headers={"Location": f"/products/{product['id']}"})

    async def list_products(request: Request) -> Response:
        limit = _limit(request.query_params.get("limit"))
        rows = await db.fetch_all(
            "SELECT id, name, price_cents, created_at FROM products ORDER BY id LIMIT ?", (limit,)
        )
        return JSONResponse({"items": [_public(r) for r in rows], "count": len(rows)})

    async def get_product(request: Request) -> Response:
        product_id = path_id(request.path_params["id"], "product")
        cached = await cache.get(str(product_id))
        if cached is not None:
            return JSONResponse(cached, headers={"X-Cache": "hit"})
        row = await db.fetch_one("SELECT id, name, price_cents, created_at FROM products WHERE id = ?", (product_id,))
        if row is None:
            raise ApiError(404, "not_found", f"product {product_id} not found")
        product = _public(row)
        await cache.set(str(product_id), product)
        return JSONResponse(product, headers={"X-Cache": "miss"})

    return svc.app(
        [
            Route("/products", create_product, methods=["POST"]),
            Route("/products", list_products, methods=["GET"]),
            Route("/products/{id}", get_product, methods=["GET"]),
        ]
    )


if __name__ == "__main__":
    main("product", create_app)
