"""The CLI's connection to a Juanie server: URL and token from flags, environment, `juanie login`'s config file,
or — on the machine that ran `juanie up` — the admin token in `./.juanie/`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8420"


class CliError(Exception):
    """Printed as one line and exit code 1; never a traceback."""


def config_path() -> Path:
    if os.environ.get("JUANIE_CONFIG"):
        return Path(os.environ["JUANIE_CONFIG"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "juanie" / "config.json"


def load_config() -> dict[str, str]:
    path = config_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise CliError(f"{path}: not a valid config file; run `juanie login` again") from None


def save_config(url: str, token: str) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": url, "token": token}, handle)
    os.replace(tmp, path)
    return path


def _local_admin_token() -> str | None:
    data_dir = Path(os.environ.get("JUANIE_DATA_DIR") or ".juanie")
    token_file = data_dir / "admin-token"
    try:
        return token_file.read_text().strip() or None
    except OSError:
        return None


@dataclass
class Client:
    url: str
    token: str | None
    timeout: float = 30.0

    @classmethod
    def from_environment(cls) -> Client:
        config = load_config()
        url = os.environ.get("JUANIE_URL") or config.get("url") or DEFAULT_URL
        token = os.environ.get("JUANIE_TOKEN") or config.get("token") or _local_admin_token()
        return cls(url.rstrip("/"), token)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = httpx.request(
                method, self.url + path, headers=self._headers(), timeout=self.timeout, **kwargs
            )
        except httpx.HTTPError as exc:
            raise CliError(
                f"cannot reach Juanie at {self.url}: {exc.__class__.__name__}: {exc}. "
                "Is the server running (`juanie up`)?"
            ) from None
        return self._decode(response)

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            if isinstance(body, dict) and "error" in body:
                err = body["error"]
                where = f" ({err['location']})" if err.get("location") else ""
                hint = " — run `juanie login`" if response.status_code == 401 else ""
                raise CliError(f"{err.get('message', 'error')}{where}{hint}")
            raise CliError(f"HTTP {response.status_code}: {response.text[:200]}")
        return body

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)

    def put(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.request("PUT", path, json=body, params={k: v for k, v in params.items() if v is not None})

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str, **params: Any) -> Any:
        return self.request("DELETE", path, params={k: v for k, v in params.items() if v is not None})
