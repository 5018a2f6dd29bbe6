from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from fastapi.testclient import TestClient

from juanie.api.app import create_app
from juanie.settings import load_settings


@dataclass
class Api:
    client: TestClient
    admin_token: str
    settings: object

    def as_(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def admin(self, method: str, path: str, **kwargs):
        return self.client.request(method, path, headers=self.as_(self.admin_token), **kwargs)

    def user_token(self, username: str, role: str | None = None, project: str | None = None) -> str:
        assert self.admin("POST", "/api/users", json={"username": username}).status_code == 201
        if role and project:
            response = self.admin(
                "PUT", f"/api/projects/{project}/members", json={"user": username, "role": role}
            )
            assert response.status_code == 200, response.text
        # An admin cannot mint tokens for others through the API; log in as the user via the store instead.
        from juanie.store import accounts

        with self.client.app.state.juanie.db.session() as s:
            _, token = accounts.issue_token(s, accounts.get_user(s, username), "test")
        return token


@pytest.fixture
def api(database_url, tmp_path, monkeypatch):
    monkeypatch.delenv("JUANIE_SECRET_KEY", raising=False)
    settings = replace(
        load_settings(data_dir=tmp_path / "data", database_url=database_url), lease_seconds=2.0
    )
    app = create_app(settings)
    with TestClient(app) as client:
        token = settings.admin_token_file.read_text().strip()
        yield Api(client, token, settings)
