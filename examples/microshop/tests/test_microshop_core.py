"""Pure parts shared by the services: JSON log lines, trace ids, the TTL cache, request validation."""

from __future__ import annotations

import json
import logging

import pytest
from microshop.cache import TTLCache
from microshop.logs import JsonFormatter, accept_trace_id, log_fields, reset_trace_id, set_trace_id
from microshop.order import parse_items, price_order
from microshop.validation import ApiError, parse_json_object, path_id, require_int, require_str


def _record(msg: str, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord("microshop.user", logging.WARNING, __file__, 1, msg, (), None)
    record.fields = fields
    return record


def test_log_lines_are_single_json_objects_with_the_current_trace_id() -> None:
    token = set_trace_id("trace-42")
    try:
        line = JsonFormatter("user").format(_record("hello\nworld", status=201))
    finally:
        reset_trace_id(token)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "warning"
    assert entry["service"] == "user"
    assert entry["msg"] == "hello\nworld"
    assert entry["trace_id"] == "trace-42"
    assert entry["status"] == 201
    assert entry["ts"].endswith("+00:00")


def test_structured_fields_cannot_overwrite_the_standard_keys() -> None:
    entry = json.loads(JsonFormatter("user").format(_record("m", **log_fields(service="evil")["fields"])))
    assert entry["service"] == "user"


def test_trace_ids_are_accepted_only_when_they_are_short_tokens() -> None:
    assert accept_trace_id("abc-123_x.y") == "abc-123_x.y"
    for bad in (None, "", "has space", "x" * 65, "new\nline"):
        generated = accept_trace_id(bad)
        assert generated != bad and len(generated) == 32


def test_ttl_cache_expires_entries_and_evicts_least_recently_used() -> None:
    now = [100.0]
    cache = TTLCache(ttl=10, max_entries=2, clock=lambda: now[0])
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.set("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    now[0] += 10
    assert cache.get("a") is None
    assert len(cache) == 1


def test_ttl_zero_disables_caching() -> None:
    cache = TTLCache(ttl=0)
    cache.set("a", 1)
    assert cache.get("a") is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "request body is empty; expected a JSON object"),
        (b"{nope", "request body is not valid JSON"),
        (b"[1, 2]", "request body must be a JSON object, got list"),
    ],
)
def test_bodies_that_are_not_json_objects_are_400_with_the_reason(raw: bytes, message: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_json_object(raw)
    assert err.value.status == 400
    assert message in err.value.message


def test_field_errors_name_the_field_the_expectation_and_the_value() -> None:
    with pytest.raises(ApiError, match=r'price_cents: expected an integer between 0 and 10, got "ten"'):
        require_int({"price_cents": "ten"}, "price_cents", maximum=10)
    with pytest.raises(ApiError, match="got true"):
        require_int({"n": True}, "n")
    with pytest.raises(ApiError, match="email: expected a value containing '@'"):
        require_str({"email": "nobody"}, "email", contains="@")
    with pytest.raises(ApiError) as err:
        path_id("0", "user")
    assert err.value.status == 404


def test_order_items_are_validated_merged_and_priced() -> None:
    lines = parse_items({"items": [{"product_id": 2, "quantity": 1}, {"product_id": 2, "quantity": 2}]})
    assert lines == [(2, 3)]
    priced, total = price_order(lines, {2: {"id": 2, "price_cents": 250}})
    assert priced == [{"product_id": 2, "quantity": 3, "unit_price_cents": 250}]
    assert total == 750
    with pytest.raises(ApiError, match=r"items\[1\]\.quantity: expected an integer between 1 and 1000, got 0"):
        parse_items({"items": [{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 0}]})
    with pytest.raises(ApiError, match="items: expected a list of 1 to 50"):
        parse_items({"items": []})


def test_unhandled_errors_become_a_json_500_that_is_counted_and_versioned(tmp_path) -> None:
    from microshop.config import load_settings
    from microshop.service import Service
    from starlette.routing import Route
    from starlette.testclient import TestClient

    svc = Service(load_settings("user", {"DATA_DIR": str(tmp_path), "SERVICE_VERSION": "v9"}), [])

    async def broken(request):
        raise RuntimeError("bug")

    with TestClient(svc.app([Route("/boom", broken)])) as client:
        response = client.get("/boom")
        assert response.status_code == 500
        assert response.json() == {"error": {"code": "internal", "message": "internal server error"}}
        assert response.headers["X-Service-Version"] == "v9"
        metrics = client.get("/metrics").text
        assert 'http_requests_total{method="GET",path="/boom",service="user",status="500"} 1.0' in metrics
