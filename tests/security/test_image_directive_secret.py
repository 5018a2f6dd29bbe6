"""A secret smuggled out through `::juanie-image`, on a real server running a real pipeline.

Step output is masked before it is logged, but the image directive used to be read from the raw line: a step that
printed `::juanie-image web=registry/x:$SECRET` got the secret recorded as the run's image (shown by the API, and
carried by the release into manifests and the GitOps repository). Now the directive is read after masking, an
image that held a secret is refused with a line in the step's log, and the run fails: no release records it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server_support import Server, git, start_server, stop_everything, wait_run

pytestmark = pytest.mark.slow
SECRET = "reg-Tok3n-9fQx27"
SPEC = """\
version: 1
project:
  name: leaky
services:
  web:
    run: python -m http.server
pipeline:
  package:
    run:
      - echo "::juanie-image web=registry.example.com/leaky/web:$IMAGE_TOKEN"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = Path(os.path.realpath(tmp_path_factory.mktemp("image-directive")))
    source = base / "leaky"
    source.mkdir()
    (source / "juanie.yaml").write_text(SPEC)
    git(source, "init", "-q", "-b", "main")
    git(source, "add", "-A")
    git(source, "commit", "-qm", "ci: announce the image")
    server = start_server(base / "data", env={"JUANIE_LOCAL_REPO_ROOTS": str(base)})
    try:
        server.ok("POST", "/api/projects", json={"name": "leaky", "repo_url": str(source)})
        server.ok("PUT", "/api/projects/leaky/secrets/IMAGE_TOKEN", json={"value": SECRET})
        yield server
    finally:
        stop_everything(server)


def test_an_image_holding_a_secret_is_refused_masked_and_fails_the_run(server: Server) -> None:
    run = wait_run(server, server.ok("POST", "/api/projects/leaky/runs", json={"ref": "main"})["id"])
    logs = server.api("GET", f"/api/runs/{run['id']}/logs").text
    assert "::juanie-image web=registry.example.com/leaky/web:***" in logs  # the step ran and printed it, masked
    assert "refused: the image reference contains a secret value" in logs  # and its log says why it is not used
    assert run["status"] == "failed" and "::juanie-image refused for web" in run["error"]
    assert "web" not in (run.get("images") or {})
    assert server.ok("GET", "/api/projects/leaky/releases")["items"] == []
    seen = [logs, server.api("GET", f"/api/runs/{run['id']}").text, server.api("GET", "/api/events").text]
    assert not [text for text in seen if SECRET in text]
