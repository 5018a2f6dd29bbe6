"""Steady HTTP load in its own process (so the engine under test does not share a GIL with it).

python load.py LISTEN HOST RATE WORKERS MAX_SECONDS OUT.json — writes progress to OUT.json every 0.2 s and a
final
report on SIGTERM or after MAX_SECONDS.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from le_helpers import Load


def main() -> None:
    listen, host, rate, workers, max_seconds, out = sys.argv[1:7]
    load = Load(listen, host, rate=float(rate), workers=int(workers), max_seconds=float(max_seconds))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())

    def report(final: bool) -> None:
        with load._lock:
            doc = {
                "ok": load.ok,
                "failed": load.failed,
                "failures": load.failures[:20],
                "versions": dict(load.versions),
                "rate": load.achieved_rate if final else 0.0,
                "final": final,
            }
        tmp = out + ".tmp"
        Path(tmp).write_text(json.dumps(doc))
        os.replace(tmp, out)

    load.start()
    while not done.wait(0.2):
        report(False)
        if all(not t.is_alive() for t in load._threads):
            break
    load.stop()
    report(True)


if __name__ == "__main__":
    main()
