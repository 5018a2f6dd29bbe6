"""The pipeline as data: stages, steps, the order they run in, their states, and log masking. Pure.

`plan` orders stages into waves by their `needs` (a stage with `needs=None` follows the stage before it, as in
GitLab CI); the executor starts a stage as soon as its needs succeeded, so waves are what the UI draws.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

RunState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
StepState = Literal["queued", "running", "succeeded", "failed", "cancelled", "skipped"]

RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "cancelled", "failed"}),
    "running": frozenset({"succeeded", "failed", "cancelled"}),
}
STEP_TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "skipped", "cancelled"}),
    "running": frozenset({"succeeded", "failed", "cancelled"}),
}
FINAL_STEP_STATES = frozenset({"succeeded", "failed", "cancelled", "skipped"})
DEFAULT_STAGES = ("build", "test", "quality", "package")
DEFAULT_STEP_TIMEOUT = 1800.0
MASK = "***"
MIN_SECRET_LENGTH = 3
"""Shorter values are not masked: replacing every `a` or `1` in a log would destroy it and hide nothing."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PipelineError(ValueError):
    """A pipeline definition Juanie cannot run; the message names the stage/step and what was expected."""


class IllegalStateChange(PipelineError):
    pass


def check_transition(kind: Literal["run", "step"], current: str, target: str) -> str:
    """Return `target` when `current -> target` is allowed for a run or a step, else raise."""
    table = RUN_TRANSITIONS if kind == "run" else STEP_TRANSITIONS
    if target not in table.get(current, frozenset()):
        allowed = ", ".join(sorted(table.get(current, ()))) or "nothing (final state)"
        raise IllegalStateChange(f"{kind} state {current} -> {target} is not allowed (from {current}: {allowed})")
    return target


@dataclass(frozen=True)
class Step:
    """One shell command (or a short script) run in the workspace, with its own timeout and environment."""

    name: str
    commands: tuple[str, ...]
    timeout: float = DEFAULT_STEP_TIMEOUT
    env: Mapping[str, str] = field(default_factory=dict)
    allow_failure: bool = False
    artifacts: tuple[str, ...] = ()
    """Glob patterns (relative to the workspace) copied to the run's artifact directory after the step."""

    @property
    def script(self) -> str:
        """The commands as one bash script that stops at the first failing command."""
        return "set -e\n" + "\n".join(self.commands) + "\n"


@dataclass(frozen=True)
class Stage:
    name: str
    steps: tuple[Step, ...]
    needs: tuple[str, ...] | None = None
    """Stages that must succeed first; None means "the stage listed before this one"; () means none."""
    parallel: bool = True


@dataclass(frozen=True)
class PipelineSpec:
    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        validate(self.stages)

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def step_keys(self) -> list[str]:
        return [step_key(s.name, st.name) for s in self.stages for st in s.steps]


def step_key(stage: str, step: str) -> str:
    """The name a step goes by in logs, events and the UI: `<stage>/<step>`."""
    return f"{stage}/{step}"


def resolved_needs(stages: Sequence[Stage]) -> dict[str, tuple[str, ...]]:
    """Each stage's needs with the implicit "previous stage" made explicit."""
    out: dict[str, tuple[str, ...]] = {}
    for i, stage in enumerate(stages):
        if stage.needs is None:
            out[stage.name] = (stages[i - 1].name,) if i > 0 else ()
        else:
            out[stage.name] = tuple(stage.needs)
    return out


def validate(stages: Sequence[Stage]) -> None:
    """Names unique and well-formed, needs pointing at real stages, timeouts positive, env keys valid."""
    if not stages:
        raise PipelineError("pipeline: expected at least one stage")
    seen: set[str] = set()
    for stage in stages:
        if not _NAME.match(stage.name):
            raise PipelineError(f"stage {stage.name!r}: expected a name of letters, digits, '_', '-' or '.'")
        if stage.name in seen:
            raise PipelineError(f"stage {stage.name!r} is defined twice; stage names must be unique")
        seen.add(stage.name)
        if not stage.steps:
            raise PipelineError(f"stage {stage.name!r}: expected at least one step")
        step_names: set[str] = set()
        for step in stage.steps:
            where = f"stage {stage.name!r} step {step.name!r}"
            if not _NAME.match(step.name):
                raise PipelineError(f"{where}: expected a name of letters, digits, '_', '-' or '.'")
            if step.name in step_names:
                raise PipelineError(f"{where} is defined twice in its stage")
            step_names.add(step.name)
            if not step.commands or not all(isinstance(c, str) and c.strip() for c in step.commands):
                raise PipelineError(f"{where}: expected one or more non-empty shell commands")
            if not step.timeout > 0:
                raise PipelineError(f"{where}: timeout must be a positive number of seconds, got {step.timeout}")
            for key in step.env:
                if not _ENV_KEY.match(key):
                    raise PipelineError(f"{where}: environment variable name {key!r} is not valid")
    for name, needs in resolved_needs(stages).items():
        for need in needs:
            if need not in seen:
                raise PipelineError(
                    f"stage {name!r} needs {need!r}, which is not a stage (stages: {', '.join(sorted(seen))})"
                )
            if need == name:
                raise PipelineError(f"stage {name!r} needs itself")


def plan(stages: Sequence[Stage]) -> list[list[Stage]]:
    """Topological waves: every stage comes after all the stages it needs. Cycles raise `PipelineError`."""
    validate(stages)
    needs = resolved_needs(stages)
    by_name = {s.name: s for s in stages}
    done: set[str] = set()
    waves: list[list[Stage]] = []
    remaining = [s.name for s in stages]
    while remaining:
        ready = [n for n in remaining if set(needs[n]) <= done]
        if not ready:
            raise PipelineError(f"stages {' -> '.join(_find_cycle(needs, remaining))} form a cycle of needs")
        waves.append([by_name[n] for n in ready])
        done.update(ready)
        remaining = [n for n in remaining if n not in done]
    return waves


def _find_cycle(needs: Mapping[str, tuple[str, ...]], remaining: list[str]) -> list[str]:
    """Walk needs from a blocked stage until a stage repeats; that loop is the cycle to report."""
    path: list[str] = []
    node = remaining[0]
    while node not in path:
        path.append(node)
        node = next(n for n in needs[node] if n in remaining)
    return [*path[path.index(node) :], node]


def stage_outcome(step_states: Iterable[tuple[StepState, bool]]) -> StepState:
    """A stage's state from its steps' (state, allow_failure): failed beats cancelled beats succeeded."""
    states = [("succeeded" if allow and s == "failed" else s) for s, allow in step_states]
    for verdict in ("failed", "cancelled", "skipped"):
        if verdict in states:
            return verdict  # type: ignore[return-value]
    return "succeeded"


def run_outcome(stage_states: Iterable[StepState], cancelled: bool) -> RunState:
    """The final run state: cancelled if asked, failed if a stage failed or was skipped, else succeeded."""
    states = list(stage_states)
    if cancelled or "cancelled" in states:
        return "cancelled"
    if "failed" in states or "skipped" in states:
        return "failed"
    return "succeeded"


def secret_variants(secret: str) -> list[str]:
    """Forms a secret takes in a log: raw, each line of a multi-line value, base64, URL-encoded."""
    if len(secret) < MIN_SECRET_LENGTH:
        return []
    found = {secret}
    found.update(line.strip() for line in secret.splitlines() if len(line.strip()) >= MIN_SECRET_LENGTH)
    raw = secret.encode()
    b64 = base64.b64encode(raw).decode()
    found.add(b64)
    found.add(b64.rstrip("="))
    found.add(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    found.add(urllib.parse.quote(secret, safe=""))
    found.add(urllib.parse.quote_plus(secret))
    return sorted((v for v in found if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


class Masker:
    """`mask` with the pattern compiled once per run (every log line passes through it)."""

    def __init__(self, secrets: Iterable[str]):
        variants: set[str] = set()
        for secret in secrets:
            variants.update(secret_variants(secret))
        ordered = sorted(variants, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern else text


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of every secret (and its common encodings) with `***`."""
    return Masker(secrets)(text)


_IMAGE_DIRECTIVE = re.compile(r"^::juanie-image\s+(?P<service>[A-Za-z0-9][A-Za-z0-9_.-]*)=(?P<ref>\S+)\s*$")


def parse_image_directive(line: str) -> tuple[str, str] | None:
    """A step announces an image it built and pushed by printing `::juanie-image <service>=<ref>`."""
    m = _IMAGE_DIRECTIVE.match(line.strip())
    return (m.group("service"), m.group("ref")) if m else None


@dataclass(frozen=True)
class ImageDirective:
    """A `::juanie-image <service>=<ref>` line as read from the *masked* log line: `ref` never holds a secret."""

    service: str
    ref: str

    @property
    def refused(self) -> bool:
        """The reference held a secret value (masked to `***`, which no image reference may contain)."""
        return MASK in self.ref

    def refusal(self) -> str:
        """The step-log line that says why the image is not recorded, and what to do instead."""
        return (f"::juanie-image {self.service}={self.ref} refused: the image reference contains a secret value "
                "(shown as ***); the run fails and no release records it. Keep credentials out of image names "
                "(log in to the registry in a step instead).")


def image_directive(masked_line: str) -> ImageDirective | None:
    """The directive on an already masked line, or None."""
    found = parse_image_directive(masked_line)
    return ImageDirective(*found) if found else None


def image_from_line(text: str, mask: Callable[[str], str]) -> tuple[str, str] | None:
    """The (service, image) a step announced on this stdout line, read *after* `mask`.

    Parsing the masked line means a recorded image can never hold a secret; one whose reference did is refused
    here (None) — the log sink says so in the step's log and the run fails (`logs.ImageGuard`).
    """
    found = image_directive(mask(text))
    return (found.service, found.ref) if found is not None and not found.refused else None


def _as_list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return value
    raise PipelineError(f"{where}: expected a string or a list, got {type(value).__name__}")


def spec_from_mapping(data: Mapping[str, Any]) -> PipelineSpec:
    """Build a spec from plain data (`{"stages": [{"name", "needs", "parallel", "steps": [...]}]}`).

    A step is `{"name", "run": str | [str], "timeout", "env", "allow_failure", "artifacts"}` or just a
    command string. The `spec` package validates juanie.yaml itself; this is the bridge from its output.
    """
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise PipelineError("pipeline.stages: expected a non-empty list of stages")
    stages = []
    for i, raw in enumerate(raw_stages):
        where = f"pipeline.stages[{i}]"
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
            raise PipelineError(f"{where}: expected a mapping with a 'name'")
        steps = []
        for j, st in enumerate(_as_list(raw.get("steps"), f"{where}.steps")):
            swhere = f"{where}.steps[{j}]"
            if isinstance(st, str):
                st = {"name": f"step-{j + 1}", "run": st}
            if not isinstance(st, Mapping):
                raise PipelineError(f"{swhere}: expected a command string or a mapping")
            env = st.get("env") or {}
            if not isinstance(env, Mapping):
                raise PipelineError(f"{swhere}.env: expected a mapping of NAME: value")
            try:
                timeout = float(st.get("timeout", DEFAULT_STEP_TIMEOUT))
            except (TypeError, ValueError) as exc:
                raise PipelineError(f"{swhere}.timeout: expected seconds, got {st.get('timeout')!r}") from exc
            steps.append(
                Step(
                    name=str(st.get("name") or f"step-{j + 1}"),
                    commands=tuple(str(c) for c in _as_list(st.get("run", st.get("commands")), f"{swhere}.run")),
                    timeout=timeout,
                    env={str(k): str(v) for k, v in env.items()},
                    allow_failure=bool(st.get("allow_failure", False)),
                    artifacts=tuple(str(a) for a in _as_list(st.get("artifacts"), f"{swhere}.artifacts")),
                )
            )
        needs = raw.get("needs")
        stages.append(
            Stage(
                name=raw["name"],
                steps=tuple(steps),
                needs=None if needs is None else tuple(str(n) for n in _as_list(needs, f"{where}.needs")),
                parallel=bool(raw.get("parallel", True)),
            )
        )
    return PipelineSpec(tuple(stages))
