"""Collect every figure of `bench/results/*.json` into one table — value, goal, anchor, met or not — in bench/README.md.

The table is generated, never edited by hand, so it cannot drift from the measurements: `make bench` runs the
benches and then this script. A figure whose result file is missing, or whose run did not produce it, is shown as
"not run" rather than guessed. Goals are judged here from the raw values, whatever a bench wrote about itself.

Usage (from the repository root): python bench/summary.py [--check]
  --check  exit 1 when bench/README.md is not what the current results would produce (for CI)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
README = BENCH / "README.md"

Data = dict[str, Any]


@dataclass(frozen=True)
class Figure:
    """One number from one result file, with the goal it must meet (if any) and what it is compared with."""

    source: str  # file name in bench/results
    label: str
    path: tuple[str, ...]  # keys into the JSON document
    unit: str = ""
    goal: tuple[str, float] | None = None  # ("<=", 30.0) or (">=", 0.9); None: reported, no goal
    anchor: str | Callable[[Data], str] = "—"


def _get(doc: Data | None, path: tuple[str, ...]) -> Any:
    value: Any = doc
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _nginx(key: str, unit: str) -> Callable[[Data], str]:
    return lambda doc: f"nginx {_fmt(_get(doc, (key,)), unit)} (same machine, same run)"


RAIL = "RAIL: ≤ 100 ms feels instant, ≤ 1 s keeps the flow"
DORA = "DORA elite: commit → production in < 1 hour"
FLUX = "Flux: 1,000 Kustomizations in 4m15s (255 s)"
K8S_API = "Kubernetes API SLO: p99 ≤ 1 s (one object), ≤ 30 s (lists)"


def _ui_figures() -> list[Figure]:
    pages = (
        "home (root)",
        "home page 15 (root)",
        "home search (root)",
        "project (root)",
        "home (member)",
        "home page 15 (member)",
        "home search (member)",
        "project (member)",
        "events (member)",
    )
    return [
        Figure("ui_pages.json", f"page {p} at 1,000 projects: median", ("pages", p, "median_ms"), "ms", ("<=", 200.0),
               RAIL)
        for p in pages
    ]


FIGURES: tuple[Figure, ...] = (
    Figure("judge_sim.json", "false rollback rate (healthy canaries)", ("false_rollback_rate",), "", ("<=", 0.01), "—"),
    Figure("judge_sim.json", "detection rate (errors 0.5% → 1% at 50 rps)", ("detection_rate",), "", (">=", 0.90), "—"),
    Figure(
        "judge_sim.json",
        "bad release (≥10% errors) → failing verdict, median",
        ("bad_release_detection_seconds_median",),
        "s",
        None,
        "Flagger tutorial ≈ 360 s to roll back",
    ),
    Figure(
        "judge_sim.json",
        "bad release exposure, median (simulated)",
        ("exposure_median",),
        "share·min",
        ("<=", 0.05),
        "Flagger ≈ 0.6; Argo Rollouts example ≈ 9",
    ),
    Figure(
        "judge_sim.json",
        "healthy promotion, median (5→25→50→100, simulated)",
        ("healthy_promotion_seconds_median",),
        "s",
        ("<=", 600.0),
        "—",
    ),
    Figure(
        "gateway_vs_nginx.json", "gateway throughput / nginx", ("ratio",), "×", (">=", 0.7), _nginx("nginx_rps", "rps")
    ),
    Figure("gateway_vs_nginx.json", "gateway throughput", ("gateway_rps",), "rps", None, _nginx("nginx_rps", "rps")),
    Figure(
        "gateway_vs_nginx.json",
        "gateway p99 − nginx p99",
        ("p99_delta_ms",),
        "ms",
        ("<=", 1.0),
        _nginx("nginx_p99_ms", "ms"),
    ),
    Figure(
        "gateway_vs_nginx.json",
        "gateway CPU per request, user + system",
        ("gateway_cpu_us_per_request", "total"),
        "µs",
        None,
        lambda doc: f"nginx {_fmt(_get(doc, ('nginx_cpu_us_per_request', 'total')), 'µs')} (same machine, same run)",
    ),
    Figure(
        "sandbox_cost.json",
        "sandbox: extra time per process start",
        ("process_start", "delta_ms"),
        "ms",
        ("<=", 50.0),
        lambda doc: f"unsandboxed start {_fmt(_get(doc, ('process_start', 'plain_ms_median')), 'ms')} (same run)",
    ),
    Figure(
        "sandbox_cost.json",
        "sandbox: microshop pipeline run, sandboxed / unsandboxed",
        ("pipeline_run", "ratio"),
        "×",
        ("<=", 1.10),
        lambda doc: f"unsandboxed {_fmt(_get(doc, ('pipeline_run', 'unsandboxed_seconds_median')), 's')} (same run)",
    ),
    Figure("observe.json", "metric ingest (append)", ("ingest", "append_samples_per_second"), "samples/s"),
    Figure(
        "observe.json",
        "rule evaluation, 1000 rules × 10000 series (best)",
        ("rule_evaluation", "evaluation_seconds_best"),
        "s",
    ),
    Figure("observe.json", "memory for microshop, 24 h of series", ("memory_microshop_24h", "memory_mib_24h"), "MiB"),
    *_ui_figures(),
    Figure(
        "rollback.json",
        "bad canary → all traffic on stable, median",
        ("rollback_seconds",),
        "s",
        ("<=", 30.0),
        "Flagger tutorial ≈ 360 s",
    ),
    Figure("rollback.json", "bad canary → judge's failing verdict, median", ("fail_verdict_seconds",), "s"),
    Figure(
        "rollback.json",
        "bad canary exposure (from weights), median",
        ("exposure",),
        "share·min",
        ("<=", 0.05),
        "Flagger tutorial ≈ 0.6; Argo Rollouts example ≈ 9",
    ),
    Figure(
        "rollback.json",
        "bad canary exposure (answers seen by the load), median",
        ("exposure_observed",),
        "share·min",
        ("<=", 0.05),
        "Flagger tutorial ≈ 0.6; Argo Rollouts example ≈ 9",
    ),
    Figure(
        "rollback.json",
        "healthy promotion, 10% 30s → 50% 30s → 100%, median",
        ("promotion_seconds",),
        "s",
        ("<=", 600.0),
        "—",
    ),
    Figure(
        "rollback.json",
        "healthy promotion, 5→25→50→100 (30s/60s/420s)",
        ("promotion_seconds_default_steps",),
        "s",
        ("<=", 600.0),
        "—",
    ),
    Figure("push_to_release.json", "push → release (warm cache), median", ("push_to_release_seconds",), "s"),
    Figure("push_to_release.json", "push → live in dev, median", ("push_to_live_dev_seconds",), "s", ("<=", 60.0),
           DORA),
    Figure("api_load.json", "API p50, 50 clients × 60 s", ("p50_ms",), "ms"),
    Figure("api_load.json", "API p99, 50 clients × 60 s", ("p99_ms",), "ms", ("<=", 250.0), K8S_API),
    Figure("api_load.json", "API errors, 50 clients × 60 s", ("errors",), "", ("<=", 0)),
    Figure("api_load.json", "API throughput, 50 clients × 60 s", ("rps",), "rps"),
    Figure("api_load.json", "API capacity, 50 clients without pause", ("saturation_rps",), "rps"),
    Figure("api_load.json", "API p99, 50 clients without pause", ("saturation_p99_ms",), "ms"),
    Figure(
        "reconcile.json",
        "reconcile 1,000 services × 3 environments: total",
        ("total_seconds",),
        "s",
        ("<=", 255.0),
        FLUX,
    ),
    Figure("reconcile.json", "reconcile: one environment, median", ("environment_seconds_median",), "s", None, FLUX),
    Figure("soak.json", "soak at 100 rps: server memory growth", ("growth_mib",), "MiB"),
    Figure("soak.json", "soak at 100 rps: memory slope (second half)", ("slope_mib_per_hour",), "MiB/h",
           ("<=", 20.0)),
    Figure("soak.json", "soak at 100 rps: errors", ("errors",), "", ("<=", 0)),
)


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:,.2f}".rstrip("0").rstrip(".")
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text} {unit}".strip() if unit and unit != "×" else (f"{text}×" if unit == "×" else text)


def verdict(value: Any, goal: tuple[str, float] | None) -> str:
    """'met', 'not met', 'no goal' or 'not run' — judged from the value itself."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "not run"
    if goal is None:
        return "no goal"
    op, limit = goal
    ok = value <= limit if op == "<=" else value >= limit
    return "met" if ok else "not met"


def rows(docs: dict[str, Data | None], figures: tuple[Figure, ...] = FIGURES) -> list[dict[str, str]]:
    """One row per figure, from the parsed result files (None: the file is missing or unreadable). Pure."""
    out = []
    for fig in figures:
        doc = docs.get(fig.source)
        value = _get(doc, fig.path)
        anchor = fig.anchor(doc) if callable(fig.anchor) and doc is not None else fig.anchor
        out.append(
            {
                "figure": fig.label,
                "value": _fmt(value, fig.unit),
                "goal": "—"
                if fig.goal is None
                else f"{fig.goal[0].replace('<=', '≤').replace('>=', '≥')} {_fmt(fig.goal[1], fig.unit)}",
                "anchor": anchor if isinstance(anchor, str) else "—",
                "status": verdict(value, fig.goal),
                "source": f"results/{fig.source}",
            }
        )
    return out


def render(table: list[dict[str, str]], docs: dict[str, Data | None]) -> str:
    """bench/README.md: how to run the benches, the table, and when each result file was written. Pure."""
    met = sum(1 for r in table if r["status"] == "met")
    judged = sum(1 for r in table if r["status"] in ("met", "not met"))
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python bench/summary.py` from `bench/results/*.json`; do not edit by hand.",
        "Run every bench with `make bench` (each script writes its own JSON file), or one with",
        "`.venv/bin/python bench/<name>.py`. Each script's docstring says what it measures and how.",
        "",
        f"**{met} of {judged} goals met.** A figure without a goal is reported for reference. Times depend on what",
        "else the machine was doing: each result file below carries its 1-minute load average before → after the run.",
        "",
        "| figure | value | goal | anchor | status | source |",
        "|---|---|---|---|---|---|",
    ]
    for r in table:
        status = {"met": "✅ met", "not met": "❌ not met"}.get(r["status"], r["status"])
        lines.append(f"| {r['figure']} | {r['value']} | {r['goal']} | {r['anchor']} | {status} | {r['source']} |")
    lines += ["", "## Result files", ""]
    for name in sorted({f.source for f in FIGURES}):
        doc = docs.get(name)
        if doc is None:
            lines.append(f"- `results/{name}`: not run yet")
            continue
        when = doc.get("finished_at") or doc.get("started_at") or "time not recorded"
        machine = doc.get("machine") or {}
        cpus = f", {machine['cpus']} CPUs" if machine.get("cpus") else ""
        lines.append(f"- `results/{name}`: {when}{cpus}{_load(machine)}")
    return "\n".join(lines) + "\n"


def _load(machine: Data) -> str:
    """The 1-minute load average before (and after) the run: the CPUs are shared, so a figure is read with it."""
    before, after = machine.get("loadavg_before"), machine.get("loadavg_after")
    if not before:
        return ""
    text = f", load {before[0]:.1f}"
    return text + (f" → {after[0]:.1f}" if after else "")


def load(directory: Path) -> dict[str, Data | None]:
    """Every result file a figure needs, parsed; unreadable or missing files map to None (with a warning)."""
    docs: dict[str, Data | None] = {}
    for name in sorted({f.source for f in FIGURES}):
        path = directory / name
        try:
            parsed = json.loads(path.read_text())
            docs[name] = parsed if isinstance(parsed, dict) else None
        except FileNotFoundError:
            docs[name] = None
        except (OSError, ValueError) as exc:
            print(f"warning: {path}: not readable as JSON ({exc}); its figures show as not run", file=sys.stderr)
            docs[name] = None
    return docs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when bench/README.md is out of date")
    args = parser.parse_args()
    docs = load(RESULTS)
    text = render(rows(docs), docs)
    if args.check:
        current = README.read_text() if README.exists() else ""
        if current != text:
            print("bench/README.md is out of date: run python bench/summary.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
