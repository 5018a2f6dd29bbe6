"""A gateway worker process: a data plane on the primary's address, driven over its control socket.

It serves nothing until the primary sent the first route table, answers the primary's questions (see
`control.answer`) one line at a time, drains and exits on SIGTERM, and exits as well when the primary goes away,
so that a primary killed with -9 never leaves a worker holding the port with a stale table.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket

from juanie.engines.local.gateway import control, listener
from juanie.engines.local.gateway.limits import ConnectionLimits
from juanie.engines.local.gateway.proxy import DataPlane, DownstreamProtocol

log = logging.getLogger("juanie.gateway.worker")


async def serve_worker(address: tuple[str, int], control_fd: int, drain_seconds: float,
                       backlog: int = 2048, limits: ConnectionLimits | None = None) -> None:  # fmt: skip
    """Run one worker until SIGTERM or until the primary closes the control socket."""
    loop = asyncio.get_running_loop()
    plane = DataPlane(loop, limits=limits)
    reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=control_fd),
                                                        limit=control.MAX_MESSAGE)  # fmt: skip
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: None)  # the primary reloads and sends the table
    server: asyncio.Server | None = None

    async def obey() -> None:
        nonlocal server
        while True:
            line = await reader.readline()
            if not line:
                log.info("the primary is gone; stopping")
                return
            try:
                message = control.decode(line)
                reply = control.answer(plane, message)
            except (ValueError, KeyError, TypeError) as err:
                reply = {"error": str(err)}
            else:
                if server is None and message.get("op") == "routes":  # bound only once it knows where to route
                    sock = listener.join(address, backlog)
                    server = await loop.create_server(lambda: DownstreamProtocol(plane), sock=sock)
                    gc.freeze()
            writer.write(control.encode(reply))

    async def housekeep() -> None:
        tick = 0
        while True:
            await asyncio.sleep(0.1)
            tick += 1
            plane.housekeep(tick)

    tasks = [asyncio.create_task(obey()), asyncio.create_task(stop.wait()), asyncio.create_task(housekeep())]
    await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
    if server is not None:
        server.close()
    await plane.drain(drain_seconds)
    for task in tasks:
        task.cancel()
    with contextlib.suppress(OSError):
        writer.close()
