"""Which namespace an environment's manifests name: the one this installation gave that environment, never another.

Every namespace belongs to exactly one live environment of one project (`store.projects.namespace_owner`). A
`juanie.yaml` may declare an environment's namespace; a declaration that names another project's namespace, or
that is not the namespace this environment was given, is refused with a located error (the pipeline fails, a
deployment is cancelled) naming the owner. What is rendered, committed to GitOps and run always uses the assigned
namespace, so a file copied from another project — whose `project.name` derives that project's namespaces and
hostnames — cannot reach into it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from juanie.domain.errors import Conflict
from juanie.spec import Environment, ProjectSpec, SpecError, SpecProblem
from juanie.spec.environment import complete_environment
from juanie.spec.errors import format_path
from juanie.spec.yamlpos import Located
from juanie.store.db import Database
from juanie.store.models import Environment as EnvRow
from juanie.store.models import Project

Finding = tuple[tuple[str, ...], str]


@dataclass(frozen=True)
class Assignment:
    """What the installation says: the project's name, its environments' namespaces, and who owns every namespace."""

    project: str
    namespaces: dict[str, str]  # environment -> namespace, this project's live environments
    owners: dict[str, tuple[str, str]]  # namespace -> (project, environment), every live environment


def load_assignment(db: Database, project: str) -> Assignment:
    with db.session() as s:
        rows = s.execute(select(EnvRow.namespace, Project.name, EnvRow.name)
                         .join(Project, Project.id == EnvRow.project_id)
                         .where(EnvRow.status != "deleted")).all()
    owners = {ns: (p, e) for ns, p, e in rows}
    return Assignment(project, {e: ns for ns, p, e in rows if p == project}, owners)


def _derived(spec: ProjectSpec, env: str) -> Environment:
    """The environment as the file's own project name would derive it (namespace and hostname left out)."""
    return complete_environment(spec.name, env, Environment())


def namespace_findings(spec: ProjectSpec, given: Assignment, envs: list[str] | None = None) -> list[Finding]:
    """Declared namespaces this project may not use, as (path, message). A namespace equal to the one the file's
    project name derives counts as not declared: it is replaced by the assigned one (see `bind`)."""
    findings: list[Finding] = []
    for name, env in spec.environments.items():
        if envs is not None and name not in envs:
            continue
        declared = env.namespace or ""
        if declared == _derived(spec, name).namespace:
            continue
        path = ("environments", name, "namespace")
        owner = given.owners.get(declared)
        assigned = given.namespaces.get(name)
        if owner is not None and owner[0] != given.project:
            findings.append((path, f'namespace "{declared}" belongs to project "{owner[0]}" (environment '
                                   f'{owner[1]}); a project acts only on its own namespaces: remove the field (the '
                                   f'namespace is then {given.project}-{name}) or choose one no project holds'))
        elif assigned is not None and declared != assigned:
            findings.append((path, f'namespace "{declared}" is not the namespace of environment '
                                   f'{given.project}/{name} ("{assigned}"); a namespace is fixed when the '
                                   f'environment is created: remove the field or write "{assigned}"'))
    return findings


def as_spec_error(findings: list[Finding], located: Located | None, filename: str = "juanie.yaml") -> SpecError:
    problems = []
    for path, message in findings:
        pos = located.value_at(path) if located is not None else None
        problems.append(SpecProblem(filename, pos.line if pos else 1, pos.col if pos else 1, format_path(path),
                                    message))
    return SpecError(problems)


def bind(spec: ProjectSpec, env: str, project: str, namespace: str) -> ProjectSpec:
    """The spec as this installation runs `env`: its assigned namespace, and the default hostname derived from the
    installation's project name (a hostname the file wrote itself is kept)."""
    found = spec.environments.get(env)
    if found is None:
        return spec
    update: dict[str, str] = {"namespace": namespace}
    if found.hostname == _derived(spec, env).hostname:
        update["hostname"] = f"{env}.{project}.localhost"
    environments = {**spec.environments, env: found.model_copy(update=update)}
    return spec.model_copy(update={"environments": environments})


def checked_bind(spec: ProjectSpec, env: str, given: Assignment) -> ProjectSpec:
    """`bind`, after refusing a declared namespace this environment may not use (Conflict naming the owner)."""
    findings = namespace_findings(spec, given, [env])
    if findings:
        path, message = findings[0]
        raise Conflict(f"juanie.yaml: {format_path(path)}: {message}", location=format_path(path))
    namespace = given.namespaces.get(env)
    if namespace is None:
        raise Conflict(f"environment {given.project}/{env} does not exist", location="env")
    return bind(spec, env, given.project, namespace)
