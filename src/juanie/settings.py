"""Where Juanie keeps its data and how it reaches its database — read once from the environment.

Every knob has an embedded default so that `juanie up` works on a laptop with nothing installed: data under
`./.juanie/`, SQLite in WAL mode, a generated secret key. A team points `JUANIE_DATABASE_URL` at PostgreSQL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8420
    secret_key: str | None = field(default=None, repr=False)
    run_controllers: bool = True
    lease_seconds: float = 10.0
    server_id: str = ""
    engine: str = "none"  # local | none; `load_settings` (what the server uses) defaults to local
    gateway_port: int = 8480
    gateway_admin_port: int = 8481
    api_threads: int = 8  # threads for request handlers (see api.app: fewer threads, less GIL convoy)
    max_body_bytes: int = 1024 * 1024  # largest request body (api.body_limit)
    max_webhook_body_bytes: int = 25 * 1024 * 1024  # largest body on /api/hooks/... (GitHub's own cap)
    webhook_reject_burst: int = 10  # refused push webhooks per (project, client) before 429 (api.webhook_guard)
    webhook_reject_per_minute: float = 10.0  # ...and how fast that allowance refills
    local_repo_roots: tuple[Path, ...] = ()  # where admins may point repo_url/gitops_url on disk (gitops.locations)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin-token"

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret.key"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'juanie.db').resolve()}"


def load_settings(
    data_dir: str | Path | None = None,
    host: str | None = None,
    port: int | None = None,
    database_url: str | None = None,
) -> Settings:
    """Arguments win over `JUANIE_*` variables, which win over the embedded defaults."""
    env = os.environ
    resolved_dir = Path(data_dir or env.get("JUANIE_DATA_DIR") or ".juanie").resolve()
    return Settings(
        data_dir=resolved_dir,
        database_url=database_url or env.get("JUANIE_DATABASE_URL") or sqlite_url(resolved_dir),
        host=host or env.get("JUANIE_HOST", "127.0.0.1"),
        port=int(port or env.get("JUANIE_PORT", 8420)),
        secret_key=env.get("JUANIE_SECRET_KEY") or None,
        run_controllers=env.get("JUANIE_CONTROLLERS", "1") not in ("0", "false", "no"),
        lease_seconds=float(env.get("JUANIE_LEASE_SECONDS", 10.0)),
        server_id=env.get("JUANIE_SERVER_ID", ""),
        engine=env.get("JUANIE_ENGINE", "local"),
        gateway_port=int(env.get("JUANIE_GATEWAY_PORT", 8480)),
        gateway_admin_port=int(env.get("JUANIE_GATEWAY_ADMIN_PORT", 8481)),
        api_threads=max(1, int(env.get("JUANIE_API_THREADS", 8))),
        max_body_bytes=max(1, int(env.get("JUANIE_MAX_BODY_BYTES", 1024 * 1024))),
        max_webhook_body_bytes=max(1, int(env.get("JUANIE_MAX_WEBHOOK_BODY_BYTES", 25 * 1024 * 1024))),
        webhook_reject_burst=max(1, int(env.get("JUANIE_WEBHOOK_REJECT_BURST", 10))),
        webhook_reject_per_minute=max(0.01, float(env.get("JUANIE_WEBHOOK_REJECT_PER_MINUTE", 10.0))),
        local_repo_roots=tuple(
            Path(p).resolve() for p in env.get("JUANIE_LOCAL_REPO_ROOTS", "").split(os.pathsep) if p.strip()
        ),
    )
