"""`python -m juanie.engines.local.gateway --listen 127.0.0.1:8480 --admin 127.0.0.1:8481 --state DIR`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from juanie.engines.local.gateway import limits
from juanie.engines.local.gateway.fleet import worker_count
from juanie.engines.local.gateway.routes import RouteError
from juanie.engines.local.gateway.server import run_gateway, run_worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m juanie.engines.local.gateway",
        description="Juanie's HTTP gateway: routes requests to versions by host, path, weight, header.",
    )
    parser.add_argument("--listen", default="127.0.0.1:8480", help="data plane address (host:port)")
    parser.add_argument("--admin", default="127.0.0.1:8481", help="admin API address (host:port)")
    parser.add_argument("--state", required=True, help="state directory (routes.json, admin-token, gateway.pid)")
    parser.add_argument("--drain-seconds", type=float, default=30.0, help="grace for in-flight requests on SIGTERM")
    parser.add_argument(
        "--workers",
        default=os.environ.get("JUANIE_GATEWAY_WORKERS", "auto"),
        help="processes serving traffic: a number, or 'auto' for one per core (default: $JUANIE_GATEWAY_WORKERS "
        "or auto)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    limits.add_arguments(parser)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # started by the primary only
    parser.add_argument("--control-fd", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        connection_limits = limits.from_arguments(args)
    except ValueError as err:
        print(f"juanie gateway: {err}", file=sys.stderr)
        return 2
    if args.worker:
        if args.control_fd is None:
            parser.error("--worker needs --control-fd (workers are started by the gateway itself)")
        run_worker(args.listen, args.control_fd, args.drain_seconds, connection_limits)
        return 0
    try:
        workers = worker_count(args.workers)
        run_gateway(args.listen, args.admin, args.state, drain_seconds=args.drain_seconds, workers=workers,
                    log_level=args.log_level, limits=connection_limits)  # fmt: skip
    except (ValueError, RouteError) as err:
        print(f"juanie gateway: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"juanie gateway: cannot start: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
