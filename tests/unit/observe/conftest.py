"""The observe tests' fixtures live in `tests/observe_support.py`, shared with the integration tests."""

from tests.observe_support import http_receiver, wait_until  # noqa: F401  (fixtures)
