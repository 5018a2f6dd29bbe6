"""Alerts: rules and their evaluation, routing, silences, inhibition and the Alertmanager receiver."""

from juanie.observe.alerts.alertmanager_receiver import AlertmanagerPayloadError, parse_alertmanager_webhook
from juanie.observe.alerts.config import RuleConfigError, rules_from_config
from juanie.observe.alerts.defaults import default_rules
from juanie.observe.alerts.model import SEVERITIES, Alert, fingerprint
from juanie.observe.alerts.rules import (
    ActiveAlert,
    AlertRule,
    AlertState,
    LogLine,
    LogRule,
    RuleError,
    Transition,
    count_log_lines,
    evaluate,
)

__all__ = [
    "SEVERITIES",
    "ActiveAlert",
    "Alert",
    "AlertRule",
    "AlertState",
    "AlertmanagerPayloadError",
    "LogLine",
    "LogRule",
    "RuleConfigError",
    "RuleError",
    "Transition",
    "count_log_lines",
    "default_rules",
    "evaluate",
    "fingerprint",
    "parse_alertmanager_webhook",
    "rules_from_config",
]
