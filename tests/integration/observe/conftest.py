"""The observe tests' fixtures live in `tests/observe_support.py`, shared with the integration tests."""

from __future__ import annotations

import pytest

from tests.observe_support import http_receiver, loopback_allowed, wait_until  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def _receivers_on_loopback(loopback_allowed: None) -> None:  # noqa: F811
    """Every receiver and Prometheus here listens on 127.0.0.1, which only an allow-list opens."""
