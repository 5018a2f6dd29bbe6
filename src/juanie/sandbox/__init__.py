"""Running untrusted code: bubblewrap namespaces, a uid per project, resource limits."""

from juanie.sandbox.jail import Identity, Jail, bwrap_argv
from juanie.sandbox.limits import LimitPlan, Limits
from juanie.sandbox.runner import OFF_WARNING, Prepared, Sandbox, SandboxConfigError
from juanie.sandbox.users import SandboxError, user_name

__all__ = [
    "OFF_WARNING",
    "Identity",
    "Jail",
    "LimitPlan",
    "Limits",
    "Prepared",
    "Sandbox",
    "SandboxConfigError",
    "SandboxError",
    "bwrap_argv",
    "user_name",
]
