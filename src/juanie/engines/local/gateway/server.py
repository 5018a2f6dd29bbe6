"""The gateway's primary process: wires the data plane, its workers, the admin API and the state directory.

The process is meant to outlive the Juanie server (it is started in its own session): it only depends on its
state directory, reloads its routes from there on start, and shuts down gracefully on SIGTERM by letting
in-flight requests finish (its workers too). SIGHUP reloads routes.json from disk. With `workers > 1` the
primary and its worker processes each listen on the same address (see `fleet` and `listener`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from juanie.engines.local.gateway import listener, state
from juanie.engines.local.gateway.admin import AdminApi, serve_connection
from juanie.engines.local.gateway.fleet import Fleet
from juanie.engines.local.gateway.limits import ConnectionLimits
from juanie.engines.local.gateway.proxy import DataPlane, DownstreamProtocol
from juanie.engines.local.gateway.routes import Route, RouteError
from juanie.engines.local.gateway.table import RouteTable

log = logging.getLogger("juanie.gateway")


def parse_address(text: str, what: str) -> tuple[str, int]:
    """`127.0.0.1:8480` -> ("127.0.0.1", 8480); a clear error for anything else."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{what}: expected host:port such as 127.0.0.1:8480, got {text!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class GatewayConfig:
    """Where the gateway listens and keeps its state, and how patient it is."""

    listen: tuple[str, int] = ("127.0.0.1", 8480)
    admin: tuple[str, int] = ("127.0.0.1", 8481)
    state_dir: Path = Path(".juanie/gateway")
    drain_seconds: float = 30.0  # on SIGTERM, how long in-flight requests may take to finish
    upstream_idle_seconds: float = 3.0  # idle keep-alive connections to backends are closed after this
    backlog: int = 2048
    workers: int = 1  # processes serving traffic, the primary included
    log_level: str = "INFO"  # handed to the workers
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)  # per client connection (see `limits`)

    @classmethod
    def from_strings(cls, listen: str, admin: str, state_dir: str | Path, **kwargs: Any) -> GatewayConfig:
        return cls(parse_address(listen, "--listen"), parse_address(admin, "--admin"), Path(state_dir), **kwargs)


class Gateway:
    """A running gateway inside an event loop: `start()`, `wait_stopped()`; `stop()` drains and closes."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.plane: DataPlane | None = None
        self.fleet: Fleet | None = None
        self._reload: asyncio.Task[None] | None = None
        self.listen_address: tuple[str, int] | None = None
        self.admin_address: tuple[str, int] | None = None
        self._servers: list[asyncio.Server] = []
        self._stopped = asyncio.Event()
        self._housekeeping: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        config = self.config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        token = state.admin_token(config.state_dir)
        routes = state.load_routes(config.state_dir)
        loop = asyncio.get_running_loop()
        plane = self.plane = DataPlane(loop, RouteTable(routes), config.limits)
        plane.pool.idle_timeout = config.upstream_idle_seconds
        listen = listener.claim(config.listen, config.backlog, shared=config.workers > 1)
        fleet = self.fleet = Fleet(plane, listen, config.state_dir, config.workers, config.drain_seconds,
                                   config.log_level, config.limits)  # fmt: skip
        api = AdminApi(fleet, token, self._persist)
        data = await loop.create_server(lambda: DownstreamProtocol(plane), sock=listen)
        admin = await asyncio.start_server(functools.partial(serve_connection, api), *config.admin, reuse_address=True)
        self._servers = [data, admin]
        await fleet.start()
        self.listen_address = data.sockets[0].getsockname()[:2]
        self.admin_address = admin.sockets[0].getsockname()[:2]
        state.write_pid(
            config.state_dir,
            {"listen": "{}:{}".format(*self.listen_address), "admin": "{}:{}".format(*self.admin_address),
             "workers": config.workers},
        )  # fmt: skip
        self._housekeeping = loop.create_task(self._housekeep())
        gc.freeze()  # startup objects never become garbage; keep the collector off them
        log.info(
            "gateway serving on %s:%d with %d process(es), admin on %s:%d, %d routes",
            *self.listen_address,
            config.workers,
            *self.admin_address,
            len(routes),
        )

    async def _persist(self, routes: tuple[Route, ...]) -> None:
        await asyncio.to_thread(state.save_routes, self.config.state_dir, routes)

    def reload_from_disk(self) -> None:
        """SIGHUP: serve what routes.json says now (an operator edited it); a bad file changes nothing."""
        fleet = self.fleet
        if fleet is None:
            return
        try:
            routes = state.load_routes(self.config.state_dir)
        except RouteError as err:
            log.error("reload refused: %s", err)
            return
        self._reload = asyncio.get_running_loop().create_task(fleet.set_routes(routes))
        log.info("reloaded %d routes from disk", len(routes))

    async def _housekeep(self) -> None:
        tick = 0
        while True:
            await asyncio.sleep(0.1)
            tick += 1
            if self.plane is not None:
                self.plane.housekeep(tick)

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to drain_seconds), then close everything."""
        if self._stopping:
            return
        self._stopping = True
        plane = self.plane
        for server in self._servers:
            server.close()
        if plane is not None:
            stopping = [plane.drain(self.config.drain_seconds)]
            if self.fleet is not None:
                stopping.append(self.fleet.stop())
            await asyncio.gather(*stopping)
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        state.remove_pid(self.config.state_dir)
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


async def serve(config: GatewayConfig) -> None:
    """Run a gateway until SIGTERM or SIGINT; SIGHUP reloads routes from the state directory."""
    gateway = Gateway(config)
    await gateway.start()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: loop.create_task(gateway.stop()))
    loop.add_signal_handler(signal.SIGHUP, gateway.reload_from_disk)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.remove_signal_handler(signal.SIGPIPE)
    await gateway.wait_stopped()


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # the gateway works on the standard loop too, only slower
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_gateway(listen: str, admin: str, state_dir: str | Path, **options: Any) -> None:
    """Run the gateway in this process until it is told to stop (blocking). Uses uvloop when installed."""
    config = GatewayConfig.from_strings(listen, admin, state_dir, **options)
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        runner.run(serve(config))


def run_worker(listen: str, control_fd: int, drain_seconds: float, limits: ConnectionLimits | None = None) -> None:
    """Run one worker process of a gateway (started by the primary, see `fleet`)."""
    from juanie.engines.local.gateway.worker import serve_worker

    with asyncio.Runner(loop_factory=_new_loop) as runner:
        runner.run(serve_worker(parse_address(listen, "--listen"), control_fd, drain_seconds, limits=limits))
