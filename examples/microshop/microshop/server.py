"""Run a service under uvicorn: JSON logs, graceful SIGTERM, exit code 0 after a clean shutdown.

On SIGTERM uvicorn stops accepting connections, lets in-flight requests finish (up to
``SHUTDOWN_GRACE_SECONDS``), runs the lifespan shutdown and returns. Recent uvicorn versions then re-raise the
captured signal, which with the default disposition would kill the process with status -15; the handlers
installed here absorb that re-raise so a graceful stop exits 0, as a supervisor expects.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import FrameType

from starlette.applications import Starlette

from microshop.config import ConfigError, Settings, load_settings
from microshop.logs import configure_logging


def _absorb(signum: int, frame: FrameType | None) -> None:
    """Placeholder disposition restored by uvicorn after shutdown; see the module docstring."""


def run(service: str, create_app: Callable[[Settings], Starlette]) -> int:
    """Load settings for ``service``, build its app and serve until SIGTERM/SIGINT; return the exit code."""
    try:
        settings = load_settings(service)
    except ConfigError as exc:
        configure_logging(service, "info").error("invalid configuration: %s", exc)
        return 2
    logger = configure_logging(service, settings.log_level)
    try:
        app = create_app(settings)
    except ConfigError as exc:
        logger.error("invalid configuration: %s", exc)
        return 2

    import uvicorn  # imported here so that `import microshop.<service>` in tests stays light

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        server_header=False,
    )
    server = uvicorn.Server(config)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _absorb)
    try:
        server.run()
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc)
        return 1
    if not server.started:
        logger.error("server did not start (see the error above)")
        return 1
    logger.info("stopped cleanly")
    return 0


def main(service: str, create_app: Callable[[Settings], Starlette]) -> None:
    sys.exit(run(service, create_app))
