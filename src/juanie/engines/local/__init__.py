"""The local engine: rendered manifests run as supervised processes on this host, behind the gateway."""

from juanie.engines.local.engine import LocalEngine
from juanie.engines.local.gateway_client import GatewayClient, ensure_gateway
from juanie.engines.local.logs import LogFilter, LogRecord
from juanie.engines.local.supervisor import Timing

__all__ = ["GatewayClient", "LocalEngine", "LogFilter", "LogRecord", "Timing", "ensure_gateway"]
