"""`python -m juanie.engines.local.gateway --listen 127.0.0.1:8480 --admin 127.0.0.1:8481 --state DIR`."""

from __future__ import annotations

import argparse
import logging
import sys

from juanie.engines.local.gateway.routes import RouteError
from juanie.engines.local.gateway.server import run_gateway


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m juanie.engines.local.gateway",
        description="Juanie's HTTP gateway: routes requests to versions by host, path, weight, header.",
    )
    parser.add_argument("--listen", default="127.0.0.1:8480", help="data plane address (host:port)")
    parser.add_argument("--admin", default="127.0.0.1:8481", help="admin API address (host:port)")
    parser.add_argument("--state", required=True, help="state directory (routes.json, admin-token, gateway.pid)")
    parser.add_argument("--drain-seconds", type=float, default=30.0, help="grace for in-flight requests on SIGTERM")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_gateway(args.listen, args.admin, args.state, drain_seconds=args.drain_seconds)
    except (ValueError, RouteError) as err:
        print(f"juanie gateway: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"juanie gateway: cannot start: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
