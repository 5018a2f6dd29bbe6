"""The payment service: the API key gate, idempotent charges, and the FAILURE_RATE / latency knobs."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from microshop import payment
from microshop.config import load_settings
from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent


def _client(tmp_path: Path, key: str = "sk_test_123", seed: int = 7) -> TestClient:
    env = {"DATA_DIR": str(tmp_path)}
    if key:
        env["PAYMENT_API_KEY"] = key
    return TestClient(payment.create_app(load_settings("payment", env), rng=random.Random(seed)))


@pytest.fixture(autouse=True)
def _knobs_start_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the fault knobs it exercises; none relies on the values the code ships with."""
    monkeypatch.setattr(payment, "FAILURE_RATE", 0.0)
    monkeypatch.setattr(payment, "EXTRA_LATENCY_SECONDS", 0.0)


@pytest.fixture
def payments(tmp_path: Path) -> Iterator[TestClient]:
    with _client(tmp_path) as client:
        yield client


def test_knob_lines_are_on_lines_of_their_own() -> None:
    """The demo edits these lines with a plain text substitution; their values are deliberately not checked here,
    because the demo's "bad release" is exactly a bug that this test suite does not catch."""
    source = (ROOT / "microshop" / "payment.py").read_text()
    assert re.search(r"^FAILURE_RATE = \d+(\.\d+)?$", source, re.MULTILINE)
    assert re.search(r"^EXTRA_LATENCY_SECONDS = \d+(\.\d+)?$", source, re.MULTILINE)


def test_payment_is_captured_and_read_back(payments: TestClient) -> None:
    created = payments.post("/payments", json={"order_id": 1, "amount_cents": 1500})
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "captured" and body["currency"] == "EUR"
    assert body["authorization_code"] == payment.authorization_code("sk_test_123", 1, 1500)
    assert "sk_test_123" not in created.text
    assert payments.get(f"/payments/{body['id']}").json() == body


def test_retrying_a_charge_is_idempotent_but_a_different_amount_conflicts(payments: TestClient) -> None:
    first = payments.post("/payments", json={"order_id": 5, "amount_cents": 100}).json()
    retry = payments.post("/payments", json={"order_id": 5, "amount_cents": 100})
    assert retry.status_code == 200 and retry.json()["id"] == first["id"]
    other = payments.post("/payments", json={"order_id": 5, "amount_cents": 999})
    assert other.status_code == 409
    assert "order 5 was already paid with a different amount" in other.json()["error"]["message"]


def test_bad_payment_requests_are_rejected(payments: TestClient) -> None:
    assert payments.post("/payments", json={"order_id": 1, "amount_cents": 0}).status_code == 422
    wrong = payments.post("/payments", json={"order_id": 1, "amount_cents": 5, "currency": "XYZ"})
    assert wrong.json()["error"]["message"] == 'currency: expected one of EUR, USD, GBP, got "XYZ"'
    assert payments.get("/payments/77").status_code == 404


def test_without_api_key_the_service_is_unready_and_refuses_payments(tmp_path: Path) -> None:
    with _client(tmp_path, key="") as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["problems"] == ["PAYMENT_API_KEY is not set"]
        refused = client.post("/payments", json={"order_id": 1, "amount_cents": 5})
        assert refused.status_code == 503
        assert refused.json()["error"]["message"] == "payments are unavailable: PAYMENT_API_KEY is not set"


def test_failure_rate_breaks_that_fraction_of_payments_and_index(
    payments: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(payment, "FAILURE_RATE", 0.2)
    statuses = [payments.get("/").status_code for _ in range(150)]
    statuses += [
        payments.post("/payments", json={"order_id": i + 1, "amount_cents": 5}).status_code for i in range(100)
    ]
    failures = statuses.count(500)
    assert 20 <= failures <= 80, failures  # 20 % of 250 is 50; the margin covers any fair random draw
    assert set(statuses) <= {200, 201, 500}
    assert payments.get("/health").status_code == 200  # probes are never broken by the knob
    monkeypatch.setattr(payment, "FAILURE_RATE", 1.0)
    broken = payments.post("/payments", json={"order_id": 9999, "amount_cents": 5})
    assert broken.status_code == 500 and broken.json()["error"]["code"] == "injected_failure"


def test_failure_rate_zero_never_fails(payments: TestClient) -> None:
    assert all(payments.get("/").status_code == 200 for _ in range(200))


def test_extra_latency_slows_payments_down(payments: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payment, "EXTRA_LATENCY_SECONDS", 0.3)
    started = time.monotonic()
    assert payments.get("/").status_code == 200
    assert time.monotonic() - started >= 0.3
