"""Stopping sandboxed processes gracefully.

A sandboxed command is a small tree: bubblewrap's monitor, its init inside the pid namespace, then the command.
bubblewrap's processes do not forward SIGTERM — they simply die of it, and the command with them (SIGKILL through
`--die-with-parent` or the end of its pid namespace). So SIGTERM goes to every process *but* bubblewrap's own:
the command shuts down as it chooses, bubblewrap follows it out, and SIGKILL after the grace period still reaches
the whole group.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable

import psutil

WRAPPER = "bwrap"


def terminate(pids: Iterable[int]) -> None:
    """SIGTERM each of `pids` except the sandbox's own processes (see the module docstring)."""
    for pid in set(pids):
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            if psutil.Process(pid).name() != WRAPPER:
                os.kill(pid, signal.SIGTERM)
