"""A juanie.yaml bound to the installation: the environment's assigned namespace, never another project's."""

from __future__ import annotations

from pathlib import Path

from juanie.controllers.namespaces import Assignment, bind, namespace_findings
from juanie.render import ReleaseRef, render_manifests
from juanie.spec import load_spec, parse_spec

MICROSHOP = Path(__file__).resolve().parents[3] / "examples" / "microshop"
OWNERS = {"microshop-dev": ("microshop", "dev"), "microshop-prod": ("microshop", "prod"),
          "bshop-dev": ("bshop", "dev"), "bshop-prod": ("bshop", "prod")}
BSHOP = Assignment("bshop", {"dev": "bshop-dev", "prod": "bshop-prod"}, OWNERS)


def test_a_copied_file_renders_into_the_installations_namespace_not_the_one_its_name_derives() -> None:
    spec = load_spec(MICROSHOP)  # project.name: microshop, so it derives microshop-dev
    assert spec.environments["dev"].namespace == "microshop-dev"
    assert namespace_findings(spec, BSHOP) == []  # derived, not declared: bound, not refused
    bound = bind(spec, "dev", "bshop", "bshop-dev")
    assert bound.environments["dev"].namespace == "bshop-dev"
    assert bound.environments["dev"].hostname == "dev.bshop.localhost"
    namespaces = {m["metadata"].get("namespace") for m in render_manifests(bound, "dev", ReleaseRef("v1", {}))
                  if m["kind"] != "Namespace"}
    assert namespaces == {"bshop-dev"}
    hosts = {h for m in render_manifests(bound, "dev", ReleaseRef("v1", {})) if m["kind"] == "HTTPRoute"
             for h in m["spec"]["hostnames"]}
    assert hosts and all(h.endswith(".dev.bshop.localhost") for h in hosts)


def _declaring(namespace: str) -> str:
    text = (MICROSHOP / "juanie.yaml").read_text().replace("project:\n  name: microshop\n",
                                                           "project:\n  name: bshop\n")
    return text.replace("environments:\n  dev:\n", f"environments:\n  dev:\n    namespace: {namespace}\n")


def test_a_declared_namespace_of_another_project_is_refused_naming_the_owner() -> None:
    (finding,) = namespace_findings(parse_spec(_declaring("microshop-dev")), BSHOP)
    assert finding[0] == ("environments", "dev", "namespace")
    assert 'namespace "microshop-dev" belongs to project "microshop" (environment dev)' in finding[1]


def test_a_declared_namespace_must_be_the_one_the_environment_was_given() -> None:
    (finding,) = namespace_findings(parse_spec(_declaring("shop-scratch")), BSHOP)
    assert 'is not the namespace of environment bshop/dev ("bshop-dev")' in finding[1]
    assert namespace_findings(parse_spec(_declaring("bshop-dev")), BSHOP) == []
