"""A stand-in Juanie server for the tests: runs a LocalEngine on a data dir until killed.

python engine_host.py DATA_DIR GATEWAY_STATE LISTEN ADMIN MANIFESTS.json STATUS.json — applies the manifests
to
shop/prod and writes the environment's status to STATUS.json every 0.1 s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from pathlib import Path

from juanie.engines.base import EnvRef
from juanie.engines.local import LocalEngine, Timing, ensure_gateway


async def main() -> None:
    data, gw_state, listen, admin, manifests, out = sys.argv[1:7]
    client = ensure_gateway(Path(gw_state), listen, admin)
    engine = LocalEngine(Path(data), client, timing=Timing(backoff_base=0.4, drain_timeout=3.0))
    await engine.start()
    env = EnvRef("shop", "prod")
    await engine.apply(env, json.loads(Path(manifests).read_text()), revision="r1")
    while True:
        st = await engine.status(env)
        tmp = out + ".tmp"
        Path(tmp).write_text(json.dumps(dataclasses.asdict(st)))
        os.replace(tmp, out)
        await asyncio.sleep(0.1)


if __name__ == "__main__":
    asyncio.run(main())
