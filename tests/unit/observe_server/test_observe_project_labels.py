"""The gateway labels its series by namespace only; the collector adds the owning project, because a project's queries
are limited to `project="<name>"` — without it, a project would not see its own traffic."""

from __future__ import annotations

from juanie.controllers.observe_collect import with_project
from juanie.observe.metrics.model import Sample


def test_gateway_series_get_the_project_that_owns_their_namespace() -> None:
    samples = [
        Sample("juanie_gateway_requests_total", {"env": "shop-dev", "service": "api", "code": "200"}, 5.0, 1.0),
        Sample("juanie_gateway_requests_total", {"env": "blog-prod", "service": "web", "code": "500"}, 1.0, 1.0),
        Sample("juanie_gateway_requests_total", {"env": "stray", "service": "x", "project": "shop"}, 1.0, 1.0),
        Sample("juanie_gateway_inflight_requests", {}, 3.0, 1.0),
    ]
    labelled = with_project(samples, {"shop-dev": "shop", "blog-prod": "blog"})
    assert [s.labels.get("project") for s in labelled] == ["shop", "blog", None, None]
    assert labelled[0].labels == {"env": "shop-dev", "service": "api", "code": "200", "project": "shop"}
    assert [(s.name, s.value, s.ts) for s in labelled] == [(s.name, s.value, s.ts) for s in samples]
