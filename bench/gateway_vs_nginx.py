"""Bench: Juanie's gateway vs nginx as reverse proxies in front of the same backend, side by side in one run.

The backend is nginx serving a small static response (so the backend is never the bottleneck and is the same
for both). In front of it: the gateway (uvloop + httptools) and an nginx reverse proxy with a keep-alive upstream,
each with the same number of processes: one per core by default (nginx's `worker_processes auto`, the gateway's
`--workers auto`), or `--workers N` for both. Each proxy is driven with `wrk -t2 -c50 -d10s --latency` on
127.0.0.1, alternating gateway/nginx for several rounds (five by default: on a shared virtual machine single
runs of either proxy show stalls of up to ~100 ms that land in p99, and a median of five is steadier than one of
three); the medians are written to
bench/results/gateway_vs_nginx.json, with the CPU time one request costs each proxy (user and system, its
main process and workers together): on a machine shared with the load generator and the backend, that cost is
what decides the throughput.

Run: .venv/bin/python bench/gateway_vs_nginx.py [--duration 10] [--rounds 5] [--workers auto|N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from _common import (
    ensure_debian_tools,
    free_port,
    machine_info,
    parse_wrk,
    port_open,
    stop_group,
    wait_until,
)

RESULTS = Path(__file__).parent / "results" / "gateway_vs_nginx.json"
BODY = "x" * 256

_NGINX_COMMON = """
daemon off;
worker_processes {workers};
pid {dir}/{name}.pid;
error_log {dir}/{name}-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/{name}-body;
  proxy_temp_path {dir}/{name}-proxy;
  fastcgi_temp_path {dir}/{name}-fastcgi;
  uwsgi_temp_path {dir}/{name}-uwsgi;
  scgi_temp_path {dir}/{name}-scgi;
  keepalive_requests 1000000;
  {body}
}}
"""

_BACKEND = """
  server {{
    listen 127.0.0.1:{port} reuseport;
    location / {{ default_type text/plain; return 200 "{text}"; }}
  }}
"""

_PROXY = """
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
  }}
"""


def _nginx(tmp: Path, name: str, body: str, workers: int, port: int) -> subprocess.Popen[bytes]:
    conf = tmp / f"{name}.conf"
    conf.write_text(_NGINX_COMMON.format(workers=workers, dir=tmp, name=name, body=body))
    proc = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(tmp)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: port_open(port))
    return proc


def _gateway(tmp: Path, backend_port: int, workers: int) -> tuple[subprocess.Popen[bytes], int, bool]:
    """The gateway with one route to the backend: its process, its port, and whether its C fast path is on."""
    port, admin = free_port(), free_port()
    state = tmp / "gateway-state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "juanie.engines.local.gateway", "--listen", f"127.0.0.1:{port}",
         "--admin", f"127.0.0.1:{admin}", "--state", str(state), "--log-level", "WARNING",
         "--workers", str(workers)],
        start_new_session=True,
    )  # fmt: skip
    wait_until(lambda: port_open(admin) and (state / "admin-token").exists())
    wait_until(lambda: len(httpx.get(f"http://127.0.0.1:{admin}/healthz", timeout=5).json()["workers"]) == workers,
               timeout=30)  # fmt: skip
    token = (state / "admin-token").read_text().strip()
    route = {
        "name": "bench/backend",
        "env": "bench",
        "service": "backend",
        "hosts": ["127.0.0.1"],
        "path_prefix": "/",
        "backends": [{"version": "v1", "weight": 100, "endpoints": [f"127.0.0.1:{backend_port}"]}],
    }
    response = httpx.put(
        f"http://127.0.0.1:{admin}/routes",
        json={"routes": [route]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    response.raise_for_status()
    fast_path = bool(httpx.get(f"http://127.0.0.1:{admin}/healthz", timeout=5).json().get("fast_path"))
    return proc, port, fast_path


def _cpu_seconds(proc: subprocess.Popen[bytes]) -> tuple[float, float]:
    """User and system CPU seconds of a proxy: its main process and every worker it started."""
    main = psutil.Process(proc.pid)
    user = system = 0.0
    for each in (main, *main.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = each.cpu_times()
            user, system = user + times.user, system + times.system
    return user, system


def _cpu_per_request(runs: list[dict[str, float]]) -> dict[str, float]:
    """Median CPU microseconds one request cost the proxy: where its throughput goes on a shared machine."""
    user = statistics.median(r.get("cpu_user_us_per_request", 0.0) for r in runs) if runs else 0.0
    system = statistics.median(r.get("cpu_sys_us_per_request", 0.0) for r in runs) if runs else 0.0
    return {"user": round(user, 2), "system": round(system, 2), "total": round(user + system, 2)}


def _wrk(port: int, duration: int, threads: int, connections: int) -> tuple[dict[str, float], list[str]]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", f"http://127.0.0.1:{port}/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    return parse_wrk(out), cmd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating gateway/nginx rounds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--workers", default="auto", help="processes of each proxy: 'auto' (one per core) or N")
    args = parser.parse_args()
    workers = (os.cpu_count() or 1) if args.workers == "auto" else int(args.workers)
    ensure_debian_tools("nginx", "wrk")
    started = datetime.now(UTC)
    machine = machine_info()
    procs: list[subprocess.Popen[bytes]] = []
    fast_path = False
    runs: dict[str, list[dict[str, float]]] = {"gateway": [], "nginx": []}
    cmd: list[str] = []
    with tempfile.TemporaryDirectory(prefix="juanie-bench-") as tmpdir:
        tmp = Path(tmpdir)
        try:
            backend_port, proxy_port = free_port(), free_port()
            procs.append(_nginx(tmp, "backend", _BACKEND.format(port=backend_port, text=BODY), 1, backend_port))
            proxy = _PROXY.format(port=proxy_port, backend=backend_port)
            nginx_proxy = _nginx(tmp, "proxy", proxy, workers, proxy_port)
            procs.append(nginx_proxy)
            gateway, gateway_port, fast_path = _gateway(tmp, backend_port, workers)
            procs.append(gateway)
            proxies = {"gateway": gateway, "nginx": nginx_proxy}
            for name, port in (("gateway", gateway_port), ("nginx", proxy_port)):
                check = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                if check.status_code != 200 or check.text != BODY:
                    raise SystemExit(f"{name} does not proxy correctly: {check.status_code} {check.text[:80]!r}")
                _wrk(port, 2, args.threads, args.connections)  # warm-up: pools, caches, JIT-free but still
            for _ in range(args.rounds):
                for name, port in (("gateway", gateway_port), ("nginx", proxy_port)):
                    before = _cpu_seconds(proxies[name])
                    result, cmd = _wrk(port, args.duration, args.threads, args.connections)
                    after = _cpu_seconds(proxies[name])
                    if result.get("requests"):  # what one request costs the proxy itself, in and out of the kernel
                        result["cpu_user_us_per_request"] = round((after[0] - before[0]) / result["requests"] * 1e6, 2)
                        result["cpu_sys_us_per_request"] = round((after[1] - before[1]) / result["requests"] * 1e6, 2)
                    runs[name].append(result)
                    print(f"{name:8s} {result['rps']:10.0f} req/s  p50 {result.get('p50_ms', 0):.3f} ms  "
                          f"p99 {result.get('p99_ms', 0):.3f} ms", flush=True)  # fmt: skip
        finally:
            for proc in reversed(procs):
                stop_group(proc)

    def median(name: str, key: str) -> float:
        return round(statistics.median(r.get(key, 0.0) for r in runs[name]), 3)

    result: dict[str, Any] = {
        "gateway_rps": median("gateway", "rps"),
        "nginx_rps": median("nginx", "rps"),
        "gateway_p50_ms": median("gateway", "p50_ms"),
        "nginx_p50_ms": median("nginx", "p50_ms"),
        "gateway_p99_ms": median("gateway", "p99_ms"),
        "nginx_p99_ms": median("nginx", "p99_ms"),
        "gateway_fast_path": fast_path,
        "gateway_cpu_us_per_request": _cpu_per_request(runs["gateway"]),
        "nginx_cpu_us_per_request": _cpu_per_request(runs["nginx"]),
    }
    result["ratio"] = round(result["gateway_rps"] / result["nginx_rps"], 3) if result["nginx_rps"] else 0.0
    result["p99_delta_ms"] = round(result["gateway_p99_ms"] - result["nginx_p99_ms"], 3)
    result["goal"] = {"ratio_min": 0.7, "p99_delta_ms_max": 1.0}
    result["goal_met"] = result["ratio"] >= 0.7 and result["p99_delta_ms"] <= 1.0
    result.update(
        wrk_command=" ".join([*cmd[:-1], "http://127.0.0.1:<port>/"]) if cmd else "",
        rounds=args.rounds,
        aggregation="median over rounds, gateway and nginx alternating",
        setup={
            "backend": "nginx, 1 worker, static 256-byte 200 response",
            "nginx_proxy": f"nginx, {workers} worker(s), upstream keepalive 64, proxy_http_version 1.1",
            "gateway": f"juanie gateway, {workers} process(es) on SO_REUSEPORT, uvloop + httptools"
            f"{' + C fast path for plain heads' if fast_path else ' (no C fast path)'}, pooled "
            "keep-alive upstream",
            "workers": workers,
        },
        runs=runs,
        started_at=started.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        machine={**machine, "loadavg_after": os.getloadavg()},
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("gateway_rps", "nginx_rps", "ratio", "gateway_p99_ms", "nginx_p99_ms")}))


if __name__ == "__main__":
    main()
