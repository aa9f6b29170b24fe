"""The docker_server proxy against Truss's nginx, without Docker:

    python benchmarks/proxy.py [--seconds 20] [--rounds 3] [--clients 1,32]
                               [--proxies pack,pack@HEAD,nginx] [--body '{"text": "hello"}']

Upstream: sample_trusses/docker-server/data/server.py (a ThreadingHTTPServer: HTTP/1.0, listen
backlog 5, one connection per request), a fresh process for every proxy and round. In front of it:
* pack: this checkout's runtime in docker_server mode (`python -m packager.runtime.entrypoint`,
  as tests/runtime/harness.py starts it), which starts the upstream itself;
* pack@REV: the runtime as committed at git revision REV (pack@HEAD: before the uncommitted change);
* nginx: the system's nginx with Truss 0.18.30's docker_server proxy.conf (rendered from the
  installed truss's template, as its image does) inside Debian's default nginx.conf (worker
  processes: auto), logs off as Truss has them. Skipped when nginx or the template is missing.

Load: benchmarks/vs_truss/load.py (keep-alive clients that reconnect where the proxy closes), N
clients POSTing the body to /v1/models/model:predict for --seconds after a one-second warm-up.
Printed per proxy, client count and round, then the median of the rounds: req/s, p50/p99 ms,
errors (non-200 answers: the proxy's 502s), the proxy's CPU per answered request (its processes
only, not the upstream's), and the kernel's counters over the run (TcpExt ListenOverflows: the
upstream's accept queue was full; SyncookiesFailed: a segment the listener could not match to a
connection, each answered with a reset).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from serving import cpu_seconds, revision_root, wait_ready  # noqa: E402

from tests.runtime.harness import Runtime, free_port, make_app  # noqa: E402

UPSTREAM = ROOT / "sample_trusses" / "docker-server" / "data" / "server.py"
LOAD = ROOT / "benchmarks" / "vs_truss" / "load.py"
TRUSS_TEMPLATE = Path("/opt/pack-truss-venv/lib/python3.11/site-packages/truss/templates/docker_server/"
                      "proxy.conf.jinja")
ENDPOINTS = {"predict_endpoint": "/predict", "readiness_endpoint": "/health/ready", "liveness_endpoint": "/health/live"}
KERNEL_COUNTERS = ("ListenOverflows", "SyncookiesFailed")


@dataclass
class Proxy:
    name: str
    port: int
    pids: list[int]


def tcp_ext() -> dict[str, int]:
    lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines() if line.startswith("TcpExt:")]
    return {k: int(v) for k, v in zip(lines[0][1:], lines[1][1:], strict=True)}


@contextlib.contextmanager
def pack_proxy(tmp: Path, rev: str | None) -> Iterator[Proxy]:
    name = f"pack@{rev}" if rev else "pack"
    code_root = revision_root(tmp / "code", rev) if rev else None
    port = free_port()
    config = {"docker_server": {"start_command": f"{sys.executable} data/server.py --port {port}",
                                "server_port": port, **ENDPOINTS}}
    app = make_app(tmp / "app", None, config=config, files={"data/server.py": UPSTREAM.read_text()})
    with Runtime(app, code_root=code_root) as rt:
        rt.wait_ready(60)
        assert rt.proc is not None
        try:
            yield Proxy(name, rt.port, [rt.proc.pid])
        finally:
            rt.stop()  # SIGTERM reaches the upstream too (a kill would leave it running)


@contextlib.contextmanager
def nginx_proxy(tmp: Path) -> Iterator[Proxy]:
    import jinja2

    upstream_port, port = free_port(), free_port()
    upstream = subprocess.Popen([sys.executable, str(UPSTREAM), "--port", str(upstream_port)])
    conf = jinja2.Template(TRUSS_TEMPLATE.read_text()).render(
        transport_kind="http", client_max_body_size="64M", server_port=upstream_port,
        liveness_endpoint=ENDPOINTS["liveness_endpoint"], readiness_endpoint=ENDPOINTS["readiness_endpoint"],
        server_endpoint=ENDPOINTS["predict_endpoint"])
    (tmp / "proxy.conf").write_text(conf.replace("listen 8080;", f"listen 127.0.0.1:{port};"))
    # Debian's default nginx.conf (what Truss's image runs), its paths moved into `tmp`.
    (tmp / "nginx.conf").write_text(f"""
worker_processes auto;
pid {tmp}/nginx.pid;
error_log /dev/null;
events {{ worker_connections 768; }}
http {{
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    gzip on;
    include {tmp}/proxy.conf;
}}
""")
    proc = subprocess.Popen(["nginx", "-c", str(tmp / "nginx.conf"), "-p", str(tmp), "-g", "daemon off;"])
    try:
        wait_ready(port)
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        yield Proxy("nginx", port, [proc.pid, *map(int, workers)])
    finally:
        for child in (proc, upstream):
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def proxy_for(name: str, tmp: Path) -> contextlib.AbstractContextManager[Proxy]:
    if name == "nginx":
        return nginx_proxy(tmp)
    if name == "pack":
        return pack_proxy(tmp, None)
    if name.startswith("pack@"):
        return pack_proxy(tmp, name.split("@", 1)[1])
    raise SystemExit(f"unknown proxy {name!r}: pack, pack@REV or nginx")


def run_load(proxy: Proxy, clients: int, seconds: float, body: str) -> dict[str, float]:
    cpu0, kernel0 = sum(map(cpu_seconds, proxy.pids)), tcp_ext()
    out = subprocess.run([sys.executable, str(LOAD), str(proxy.port), str(clients), str(seconds), "1.0", body],
                         capture_output=True, text=True, timeout=seconds + 180)
    if out.returncode:
        raise RuntimeError(f"the load generator failed:\n{out.stderr}")
    cpu, kernel = sum(map(cpu_seconds, proxy.pids)) - cpu0, tcp_ext()
    result: dict[str, float] = json.loads(out.stdout)
    figures = {"req/s": result["requests"] / result["seconds"], "p50 ms": result["p50"] * 1000,
               "p99 ms": result["p99"] * 1000, "errors": result["errors"], "dropped": result["dropped"],
               "CPU µs/req": cpu / max(result["answered"], 1) * 1e6}
    figures.update({name: kernel.get(name, 0) - kernel0.get(name, 0) for name in KERNEL_COUNTERS})
    return figures


COLUMNS = ("req/s", "p50 ms", "p99 ms", "errors", "dropped", "CPU µs/req", *KERNEL_COUNTERS)


def print_table(rows: list[tuple[str, ...]]) -> None:
    header = ("proxy", "clients", "round", *COLUMNS)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(" | ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)), flush=True)


def cells(figures: dict[str, float]) -> tuple[str, ...]:
    return tuple(f"{figures[c]:.2f}" if c in ("p50 ms", "p99 ms") else f"{figures[c]:.0f}" for c in COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", default="1,32")
    parser.add_argument("--proxies", default="pack,nginx")
    parser.add_argument("--body", default=json.dumps({"text": "hello"}))
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    proxies = args.proxies.split(",")
    if "nginx" in proxies and (shutil.which("nginx") is None or not TRUSS_TEMPLATE.exists()):
        print("nginx or Truss's proxy.conf template missing: no nginx rows", file=sys.stderr)
        proxies.remove("nginx")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; {args.seconds:g} s per run", flush=True)
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name in proxies:  # the proxies take turns, each started afresh every round
                where = Path(tmp) / f"{round_}-{name}"
                where.mkdir()
                with proxy_for(name, where) as proxy:
                    for count in clients:
                        figures = run_load(proxy, count, args.seconds, args.body)
                        runs.setdefault((name, count), []).append(figures)
                        rows.append((name, str(count), str(round_ + 1), *cells(figures)))
                        time.sleep(1)  # let the closed connections' TIME_WAIT and accept queue settle
    print_table(rows)
    print("\nmedians of the rounds:")
    print_table([(name, str(count), "median", *cells({c: statistics.median(r[c] for r in results) for c in COLUMNS}))
                 for (name, count), results in sorted(runs.items())])


if __name__ == "__main__":
    main()
