"""How one replica is launched: which directory an image names, its environment, its argv. Pure.

The child's environment is built from nothing but the manifest, the environment's secrets and a few host
basics
(PATH, HOME, LANG): the Juanie server's own variables (tokens, database URLs) never leak into an application,
and
two environments never see each other's values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from juanie.engines.base import EngineError
from juanie.engines.local.manifests import WorkloadSpec

_RELEASE = re.compile(r"^juanie\.local/([A-Za-z0-9._-]+)/([A-Za-z0-9._-]+):([A-Za-z0-9._-]+)$")
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\$")
_HOST_KEEP = ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME")


def resolve_image(image: str, releases_dir: Path) -> Path:
    """The directory an image names.

    `juanie.local/<project>/<service>:<sha>` -> `<releases_dir>/<project>/<service>/<sha>`;
    `file:///abs/path` -> `/abs/path`.
    """
    m = _RELEASE.match(image)
    if m:
        return releases_dir / m.group(1) / m.group(2) / m.group(3)
    if image.startswith("file://"):
        path = image[len("file://") :]
        if not path.startswith("/"):
            raise EngineError(f"image {image!r}: expected an absolute path after file://, e.g. file:///srv/app")
        return Path(path)
    raise EngineError(
        f"image {image!r}: the local engine runs release images 'juanie.local/<project>/<service>:<sha>' "
        "and directories 'file:///absolute/path'; use the Kubernetes engine for container images"
    )


@dataclass(frozen=True)
class InstanceIdentity:
    """The labels of one replica, also given to it as JUANIE_* variables."""

    project: str
    env: str
    namespace: str
    instance: str
    port: int
    data_dir: Path


def _lookup(
    source: str, name: str, config_maps: dict[str, dict[str, str]], secrets: dict[str, dict[str, str]]
) -> dict[str, str] | None:
    if source == "configMap":
        return config_maps.get(name)
    # A Secret named "*" (from the server's secrets hook) answers for Secrets that no manifest carries.
    return secrets.get(name, secrets.get("*"))


def resolve_env(
    w: WorkloadSpec,
    ident: InstanceIdentity,
    config_maps: dict[str, dict[str, str]],
    secrets: dict[str, dict[str, str]],
    host_env: dict[str, str],
    release_dir: Path,
    ports: dict[str, int],
) -> dict[str, str]:
    """The complete environment of one replica. Raises EngineError naming a missing ConfigMap/Secret key
    (never its value)."""
    venv_bin = release_dir / "venv" / "bin"
    path = host_env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    env = {k: host_env[k] for k in _HOST_KEEP if k in host_env}
    env["PATH"] = f"{venv_bin}:{path}" if venv_bin.is_dir() else path
    if venv_bin.is_dir():
        env["VIRTUAL_ENV"] = str(venv_bin.parent)
    env["PYTHONUNBUFFERED"] = "1"
    where = f"Deployment/{w.name}"
    for ef in w.env_from:
        data = _lookup(ef.source, ef.ref_name, config_maps, secrets)
        if data is None:
            if ef.optional:
                continue
            kind = "ConfigMap" if ef.source == "configMap" else "Secret"
            raise EngineError(f"{where}: envFrom refers to {kind} {ef.ref_name!r}, which does not exist")
        for k, v in data.items():
            env[ef.prefix + k] = v
    for e in w.env:
        if e.source == "":
            env[e.name] = _expand(e.value or "", env)
        elif e.source == "field":
            env[e.name] = {
                "metadata.name": ident.instance,
                "metadata.namespace": ident.namespace,
                "status.podIP": "127.0.0.1",
                "status.hostIP": "127.0.0.1",
            }.get(e.ref_key, "")
        else:
            data = _lookup(e.source, e.ref_name, config_maps, secrets)
            kind = "ConfigMap" if e.source == "configMap" else "Secret"
            if data is None or e.ref_key not in data:
                if e.optional:
                    continue
                missing = f"{kind} {e.ref_name!r}" if data is None else f"key {e.ref_key!r} in {kind} {e.ref_name!r}"
                raise EngineError(f"{where}: env {e.name} refers to {missing}, which does not exist")
            env[e.name] = data[e.ref_key]
    gateway = host_env.get("JUANIE_GATEWAY_URL", "")
    if gateway:
        env = {k: localize_service_url(v, ident.namespace, gateway) for k, v in env.items()}
    # What the engine decides always wins over what the manifest says: the port and data dir are per instance.
    for pname, port in ports.items():
        if pname:
            env[f"PORT_{re.sub(r'[^A-Za-z0-9]', '_', pname).upper()}"] = str(port)
    env["PORT"] = str(ident.port)
    env["DATA_DIR"] = str(ident.data_dir)
    env["HOSTNAME"] = ident.instance
    env.update(
        {
            "JUANIE_PROJECT": ident.project,
            "JUANIE_ENV": ident.env,
            "JUANIE_NAMESPACE": ident.namespace,
            "JUANIE_SERVICE": w.service,
            "JUANIE_VERSION": w.version,
            "JUANIE_INSTANCE": ident.instance,
        }
    )
    return env


_SERVICE_URL = re.compile(r"^(https?)://([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(:\d+)?(/.*)?$")


def localize_service_url(value: str, namespace: str, gateway: str) -> str:
    """`http://user:8001/x` (a Service of the same namespace, as Kubernetes DNS names it) becomes the gateway's
    path form `http://127.0.0.1:8480/<namespace>/user/x`, so services find each other here as in a cluster.
    Names with a dot (other hosts) and anything that is not a bare http URL are left alone."""
    match = _SERVICE_URL.match(value)
    if not match or match.group(2) == "localhost":
        return value
    return f"{gateway.rstrip('/')}/{namespace}/{match.group(2)}{match.group(5) or ''}"


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: known variables substituted, unknown ones kept, `$$` -> `$`."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR.sub(sub, text)


def build_argv(w: WorkloadSpec, env: dict[str, str]) -> list[str]:
    """command + args with `$(VAR)` expanded from the replica's environment."""
    return [_expand(a, env) for a in (*w.command, *w.args)]


def probe_port(port_ref: str, w: WorkloadSpec, ports: dict[str, int], main_port: int) -> int:
    """A probe's `port` (a name, a containerPort, or empty) -> the port this replica really listens on."""
    if port_ref in ports and port_ref:
        return ports[port_ref]
    for p in w.ports:
        if port_ref == str(p.container_port):
            return ports.get(p.name, main_port) if p.name else main_port
    if port_ref.isdigit() and w.ports:
        return int(port_ref)
    return main_port
