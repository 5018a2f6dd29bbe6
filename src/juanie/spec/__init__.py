"""The `juanie.yaml` contract: schema, loading with located errors, defaults, JSON Schema export."""

from .alerts import DEFAULT_ALERTS
from .branches import environment_for_branch
from .environment import NAMED_DEFAULTS, CanaryStep, Environment, Strategy
from .errors import SpecError, SpecProblem
from .fields import cpu_millicores, duration_seconds, memory_bytes
from .loader import load_spec, parse_spec
from .operations import Alerting, AlertRule, Backup, LoadTest, Pipeline, Slo, Stage
from .project import Gateway, ProjectMeta, ProjectSpec
from .schema import json_schema
from .service import (
    BACKING_SERVICES,
    DEFAULT_RESOURCES,
    Autoscaling,
    Probes,
    Quantities,
    Resources,
    SecretRef,
    Service,
)

__all__ = [
    "BACKING_SERVICES",
    "DEFAULT_ALERTS",
    "DEFAULT_RESOURCES",
    "NAMED_DEFAULTS",
    "AlertRule",
    "Alerting",
    "Autoscaling",
    "Backup",
    "CanaryStep",
    "Environment",
    "Gateway",
    "LoadTest",
    "Pipeline",
    "Probes",
    "ProjectMeta",
    "ProjectSpec",
    "Quantities",
    "Resources",
    "SecretRef",
    "Service",
    "Slo",
    "SpecError",
    "SpecProblem",
    "Stage",
    "Strategy",
    "cpu_millicores",
    "duration_seconds",
    "environment_for_branch",
    "json_schema",
    "load_spec",
    "memory_bytes",
    "parse_spec",
]
