"""Finding and killing every process a test's directory started (servers, gateways, replicas)."""

from __future__ import annotations

from pathlib import Path

import psutil


def kill_under(path: Path) -> None:
    """Kill every process whose command line mentions ``path`` (servers, gateways, replicas), then wait."""
    victims = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
        except psutil.Error:
            continue
        if str(path) in text:
            victims.append(proc)
    for proc in victims:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(victims, timeout=10)


def leftovers(path: Path) -> list[int]:
    out = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
        except psutil.Error:
            continue
        if str(path) in text and proc.status() != psutil.STATUS_ZOMBIE:
            out.append(proc.pid)
    return out
