"""Checks across sections that one model cannot make alone: dependencies, ports, alert and test references."""

from __future__ import annotations

import difflib

from .alerts import DEFAULT_NAMES
from .project import ProjectSpec
from .service import BACKING_SERVICES
from .yamlpos import Path

Finding = tuple[Path, str]
_RESERVED_ENV = frozenset({"PORT"})


def _hint(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def _dependencies(spec: ProjectSpec) -> list[Finding]:
    findings: list[Finding] = []
    names = sorted(spec.services)
    candidates = names + list(BACKING_SERVICES)
    for name, service in spec.services.items():
        for i, dep in enumerate(service.dependencies):
            if dep == name:
                findings.append(
                    ((("services", name, "dependencies", i)), f'service "{name}" cannot depend on itself')
                )
            elif dep not in spec.services and dep not in BACKING_SERVICES:
                expected = (
                    f"a service of this project ({', '.join(names)}) or one of {', '.join(BACKING_SERVICES)}"
                )
                findings.append(
                    (
                        ("services", name, "dependencies", i),
                        f'unknown dependency "{dep}"; expected {expected}{_hint(dep, candidates)}',
                    )
                )
    cycle = _find_cycle(
        {n: [d for d in s.dependencies if d in spec.services and d != n] for n, s in spec.services.items()}
    )
    if cycle:
        findings.append((("services", cycle[0], "dependencies"), f"dependency cycle: {' -> '.join(cycle)}"))
    return findings


def _find_cycle(graph: dict[str, list[str]]) -> list[str]:
    """The first cycle found in file order, as a closed walk (`a -> b -> a`), or []."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def _services(spec: ProjectSpec) -> list[Finding]:
    findings: list[Finding] = []
    ports: dict[int, str] = {}
    for name, service in spec.services.items():
        if service.port in ports:
            findings.append(
                (
                    ("services", name, "port"),
                    f'port {service.port} is already used by service "{ports[service.port]}"',
                )
            )
        ports.setdefault(service.port, name)
        for var in service.env:
            if var in _RESERVED_ENV:
                findings.append(
                    (("services", name, "env", var), f"{var} is set by Juanie from the service's port")
                )
            elif var in service.secrets:
                findings.append(
                    (("services", name, "env", var), f"{var} is also declared under secrets; keep one")
                )
        for var in service.secrets:
            if var in _RESERVED_ENV:
                findings.append(
                    (("services", name, "secrets", var), f"{var} is set by Juanie from the service's port")
                )
    return findings


def _environments(spec: ProjectSpec) -> list[Finding]:
    findings: list[Finding] = []
    seen: dict[str, str] = {}
    for name, env in spec.environments.items():
        assert env.namespace is not None
        if env.namespace in seen:
            findings.append(
                (
                    ("environments", name, "namespace"),
                    f'namespace "{env.namespace}" is already used by "{seen[env.namespace]}"',
                )
            )
        seen.setdefault(env.namespace, name)
    return findings


def _operations(spec: ProjectSpec) -> list[Finding]:
    findings: list[Finding] = []
    seen: set[str] = set()
    for i, rule in enumerate(spec.alerts):
        if rule.name in seen:
            findings.append((("alerts", i, "name"), f'alert "{rule.name}" is declared twice'))
        seen.add(rule.name)
        if rule.name not in DEFAULT_NAMES and rule.expr is None and rule.enabled:
            defaults = ", ".join(sorted(DEFAULT_NAMES))
            findings.append(
                (
                    ("alerts", i),
                    f'custom alert "{rule.name}" needs "expr" (PromQL); the defaults are {defaults}',
                )
            )
    services = sorted(spec.services)
    for i, test in enumerate(spec.load_tests):
        if test.service not in spec.services:
            findings.append(
                (
                    ("load_tests", i, "service"),
                    f'unknown service "{test.service}"{_hint(test.service, services)}',
                )
            )
    used = {d for s in spec.services.values() for d in s.dependencies}
    for i, backup in enumerate(spec.backups):
        if backup.dependency not in used:
            findings.append((("backups", i, "dependency"), f'no service depends on "{backup.dependency}"'))
        for j, env in enumerate(backup.environments):
            if env not in spec.environments:
                hint = _hint(env, list(spec.environments))
                findings.append((("backups", i, "environments", j), f'unknown environment "{env}"{hint}'))
    return findings


def check_references(spec: ProjectSpec) -> list[Finding]:
    """Every cross-reference problem of a spec that passed the schema, as (path, message)."""
    return _dependencies(spec) + _services(spec) + _environments(spec) + _operations(spec)
