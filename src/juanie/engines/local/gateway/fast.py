"""The optional C fast path for plain message heads (`_fasthttp.c`): its two functions, or None for each.

None where the extension was not built (no C compiler at install time) or where JUANIE_GATEWAY_FASTPATH=0
turns it off, to compare both paths or to rule the fast one out. Without it every head goes through httptools,
with the same results and more CPU per request.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

from juanie.engines.local.gateway.http1 import STATUS_LINES


def _load() -> Any:
    if os.environ.get("JUANIE_GATEWAY_FASTPATH", "1") == "0":
        return None
    try:
        from juanie.engines.local.gateway import _fasthttp  # type: ignore[attr-defined]
    except ImportError:
        return None
    _fasthttp.set_status_lines(dict(STATUS_LINES))
    _fasthttp.seed(random.getrandbits(64), random.getrandbits(64))
    return _fasthttp


_module = _load()

parse_request: Callable[[bytes, int, bytes, int], tuple[int, bytes, bytes, bytes, bytes, bool, bool] | None] | None
parse_response: Callable[[bytes, bytes, bool, bool], tuple[int, int, bytes, int, bool] | None] | None
parse_request = _module.parse_request if _module is not None else None
parse_response = _module.parse_response if _module is not None else None
