"""The server's malloc arena cap takes effect: threads started after it share two arenas (glibc only)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

from juanie.malloc_arenas import cap_malloc_arenas

try:
    ctypes.CDLL(None).malloc_stats  # noqa: B018 - glibc has it, other C libraries may not
except AttributeError:
    pytest.skip("not glibc", allow_module_level=True)

_THREADS = """
import ctypes, sys, threading
from juanie.malloc_arenas import cap_malloc_arenas
if sys.argv[1] == "capped":
    assert cap_malloc_arenas()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)
start = threading.Barrier(12)
def work():
    start.wait()  # all at once, so that they contend and glibc reaches for more arenas
    for _ in range(2000):
        libc.free(libc.malloc(4096))
threads = [threading.Thread(target=work) for _ in range(12)]
for t in threads: t.start()
for t in threads: t.join()
libc.malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


def _arenas(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run([sys.executable, "-c", _THREADS, mode], capture_output=True, text=True, env=env,
                          timeout=60, check=True)  # fmt: skip
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


def test_threads_share_at_most_two_arenas_once_capped() -> None:
    assert _arenas("default") > 2  # the cap is what makes the difference here, not the workload
    assert _arenas("capped") <= 2


def test_an_explicit_malloc_arena_max_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert cap_malloc_arenas() is False
