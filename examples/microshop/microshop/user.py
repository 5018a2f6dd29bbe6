"""The user service: customer accounts. ``POST /users``, ``GET /users/{id}``.

Run it with ``python -m microshop.user`` (port 8001 unless ``PORT`` says otherwise).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from microshop.config import Settings, load_settings
from microshop.server import main
from microshop.service import Service, read_json
from microshop.validation import ApiError, path_id, require_str

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS users (
        id {id},
        email TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
    )""",
]


def _public(row: dict) -> dict:
    return {"id": row["id"], "email": row["email"], "name": row["name"], "created_at": str(row["created_at"])}


def create_app(settings: Settings | None = None) -> Starlette:
    """The user service app; ``settings`` default to the environment."""
    svc = Service(settings or load_settings("user"), SCHEMA)
    db = svc.db

    async def create_user(request: Request) -> Response:
        body = await read_json(request)
        email = require_str(body, "email", max_length=254, contains="@").lower()
        name = require_str(body, "name", max_length=120)
        if await db.fetch_one("SELECT id FROM users WHERE email = ?", (email,)):
            raise ApiError(409, "conflict", f"a user with email {email!r} already exists")
        row = await db.fetch_one(
            "INSERT INTO users (email, name) VALUES (?, ?) RETURNING id, email, name, created_at",
            (email, name),
        )
        assert row is not None
        svc.logger.info("created user %d", row["id"])
        return JSONResponse(_public(row), status_code=201, headers={"Location": f"/users/{row['id']}"})

    async def get_user(request: Request) -> Response:
        user_id = path_id(request.path_params["id"], "user")
        row = await db.fetch_one("SELECT id, email, name, created_at FROM users WHERE id = ?", (user_id,))
        if row is None:
            raise ApiError(404, "not_found", f"user {user_id} not found")
        return JSONResponse(_public(row))

    return svc.app(
        [
            Route("/users", create_user, methods=["POST"]),
            Route("/users/{id}", get_user, methods=["GET"]),
        ]
    )


if __name__ == "__main__":
    main("user", create_app)
