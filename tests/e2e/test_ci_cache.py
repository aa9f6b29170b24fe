"""CI on a fresh runner: layers and baked weights come from the registry, not from the hub.

Engine A (the main engine) runs `pack push` of a bake-mode truss whose weights are fresh random
bytes on the Hugging Face stand-in. The runner is a second, private engine started for this
module (tests.fixtures.private_engine: its own data root and socket, the base image pulled from
the test registry, no credentials but the registry's); on it the `pack` CLI runs as a CI job
would (DOCKER_HOST, DOCKER_CONFIG, CI=true) from a fresh checkout of the truss (pack.lock
included):

1. `pack build --cache-from REF --json`: the hub serves 0 weight bytes (counted at the hub), no
   download step runs and every weight layer is the very layer engine A pushed;
2. model.py edited, the same build: only the steps from `COPY model` on are built;
3. the control: a fresh truss copy with weights new to this engine, built without --cache-from,
   makes the hub serve every weight byte (the counters can see a download).

Which steps ran is read from pack's `--progress plain` lines on stderr ("[step] NAME", "[cached]
NAME": the engine's own progress, one line per step) and compared with the --json line's
counters; which layers the images hold, from each engine's `RootFS.Layers`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from packager.engine import StepEvent, StepEventKind
from tests.e2e.conftest import REPO_ROOT, Hub, Step, steps_from_events
from tests.fixtures.docker_env import BASE_IMAGE, RegistryEnv, remove_truss_artifacts, unique
from tests.fixtures.private_engine import PrivateEngine

pytestmark = pytest.mark.docker

COPY_MODEL = "COPY model /app/model"
# Two shards (LFS files on the hub, like real weights): a couple of MB in all.
SHARD_SIZES = {"model-00001-of-00002.safetensors": 1536 * 1024, "model-00002-of-00002.safetensors": 768 * 1024}
WEIGHT_BYTES = sum(SHARD_SIZES.values())
MODEL_PY = "class Model:\n    def predict(self, model_input):\n        return model_input\n"


def pack_argv() -> list[str]:
    venv = REPO_ROOT / ".venv" / "bin" / "pack"
    return [str(venv)] if venv.exists() else [sys.executable, "-m", "packager.cli.main"]


@dataclass(frozen=True)
class CiBuild:
    """One `pack build --json --progress plain` on the runner."""

    doc: dict[str, Any]  # the --json line
    steps: list[Step]  # from the plain progress lines
    hub_bytes: int  # weight bytes the hub served during the build
    layers: list[str]  # RootFS.Layers of the built image, on the runner

    def final_stage(self) -> tuple[list[Step], int]:
        """(the final stage's steps in Dockerfile order, the index of `COPY model` in it)."""
        copy_model = [s for s in self.steps if s.instruction == COPY_MODEL]
        assert len(copy_model) == 1, [s.name for s in self.steps]
        final = sorted((s for s in self.steps if s.stage == copy_model[0].stage), key=lambda s: s.number)
        return final, next(i for i, s in enumerate(final) if s.instruction == COPY_MODEL)

    def weight_steps(self) -> list[Step]:
        """The download stages' steps and the final stage's COPYs of their results."""
        final, _ = self.final_stage()
        stage = final[0].stage
        return [s for s in self.steps
                if (s.stage != stage and s.stage is not None and s.stage.startswith("pack-weights"))
                or s.instruction.startswith("COPY --from=pack-weights")]


def parse_plain_steps(stderr: str) -> list[Step]:
    """Every step pack's plain progress announced (FROM excluded), and whether it was cached: its
    "[step] NAME" / "[cached] NAME" lines are the build's STARTED / CACHED events, read back."""
    kinds = {"[step]": StepEventKind.STARTED, "[cached]": StepEventKind.CACHED}
    events = []
    for line in stderr.splitlines():
        kind, _, name = line.partition(" ")
        if kind in kinds:
            events.append(StepEvent(kinds[kind], vertex=name, name=name))
    return steps_from_events(events)


def run_pack(env: dict[str, str], *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*pack_argv(), *args], env=env, input=input, capture_output=True, text=True,
                          timeout=900, check=False, cwd=REPO_ROOT)
    assert proc.returncode == 0, f"pack {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return proc


def json_line(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout
    doc: dict[str, Any] = json.loads(lines[0])
    assert doc.get("ok") is True, doc
    return doc


def runtime_digest() -> str:
    """sha256 of the pack runtime files a build copies into the image (packager/__init__.py,
    constants.py, runtime/): the weight download stages COPY them, so a change between engine A's
    push and a runner's build invalidates the weight layers, as a pack upgrade would."""
    package = REPO_ROOT / "packager"
    digest = hashlib.sha256()
    paths = [package / "__init__.py", package / "constants.py",
             *sorted(p for p in (package / "runtime").rglob("*") if p.is_file() and "__pycache__" not in p.parts)]
    for path in paths:
        digest.update(f"{path.relative_to(package)}\0".encode() + path.read_bytes())
    return digest.hexdigest()


def write_truss(root: Path, repo_id: str, model_name: str) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.py").write_text(MODEL_PY)
    (root / "config.yaml").write_text(
        f"model_name: {model_name}\npython_version: py311\nrequirements: []\n"
        f"model_cache:\n  - repo_id: {repo_id}\n    revision: main\n    use_volume: false\n")
    return root


def new_weights(hub: Hub) -> str:
    repo_id = f"e2e-ci/{unique('weights')}"
    hub.hub.add_repo(repo_id).commit({name: os.urandom(size) for name, size in SHARD_SIZES.items()})
    return repo_id


@dataclass
class Ci:
    hub: Hub
    runner: PrivateEngine
    env: dict[str, str]  # a CI job's environment on the runner
    ref: str  # what engine A pushed
    pushed: dict[str, Any]  # engine A's `pack push --json` line
    a_layers: list[str]  # RootFS.Layers of engine A's image
    checkout: Path  # the runner's fresh checkout of the truss
    workspace: Path
    runtime: str  # runtime_digest() when engine A's push began

    def build(self, truss: Path, *extra: str) -> CiBuild:
        self.hub.hub.reset_stats()
        proc = run_pack(self.env, "build", str(truss), "--base-image", BASE_IMAGE, "--json", "--progress", "plain",
                        *extra)
        hub_bytes = self.hub.hub.file_bytes()
        if "--cache-from" in extra and runtime_digest() != self.runtime:
            # Someone edited pack's runtime in this working tree meanwhile: the runner built with
            # another pack than engine A did, and no layer cache can (or should) match that.
            pytest.skip("packager/runtime changed between engine A's push and the runner's build")
        doc = json_line(proc)
        layers = json.loads(self.runner.docker("image", "inspect", "-f", "{{json .RootFS.Layers}}",
                                               doc["image_id"]).stdout)
        return CiBuild(doc, parse_plain_steps(proc.stderr), hub_bytes, layers)


@pytest.fixture(scope="module")
def ci(hub: Hub, private_engine: PrivateEngine, registry: RegistryEnv, docker_client: Any,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ci]:
    workspace = tmp_path_factory.mktemp("ci")
    model_name = unique("ci-cache")
    dev = write_truss(workspace / "dev" / "truss", new_weights(hub), model_name)
    ref = f"{registry.repo(unique('pack-test/ci-cache'))}:e2e"
    # Engine A: the developer's (or the main branch's) `pack push`, with its own empty docker
    # config: the credentials come from --password-stdin only.
    a_env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
    a_env.update(DOCKER_CONFIG=str(workspace / "a-docker-config"), CI="true")
    (workspace / "a-docker-config").mkdir()
    configs = [dev / "config.yaml"]
    try:
        runtime = runtime_digest()
        pushed = json_line(run_pack(a_env, "push", str(dev), "--image", ref, "--base-image", BASE_IMAGE,
                                    "--username", registry.username, "--password-stdin", "--json",
                                    input=registry.password + "\n"))
        a_layers = docker_client.api.inspect_image(pushed["image_id"])["RootFS"]["Layers"]
        # The runner checks the repository out elsewhere: same files, pack.lock included.
        checkout = workspace / "runner" / "checkout" / "truss"
        shutil.copytree(dev, checkout)
        env = private_engine.env()
        env["CI"] = "true"
        yield Ci(hub, private_engine, env, ref, pushed, a_layers, checkout, workspace, runtime)
    finally:
        # Engine A's tags of this run (the build tag and the registry ref); the runner's images go
        # with the private engine. Registry tags stay.
        configs.extend(workspace.glob("**/config.yaml"))
        remove_truss_artifacts(docker_client, configs)


@pytest.fixture(scope="module")
def cached(ci: Ci) -> CiBuild:
    return ci.build(ci.checkout, "--cache-from", ci.ref)


@pytest.fixture(scope="module")
def edited(ci: Ci, cached: CiBuild) -> CiBuild:
    with (ci.checkout / "model" / "model.py").open("a") as fh:
        fh.write(f"\n# a new commit on the CI runner ({uuid.uuid4().hex})\n")
    return ci.build(ci.checkout, "--cache-from", ci.ref)


@pytest.fixture(scope="module")
def control(ci: Ci, edited: CiBuild) -> CiBuild:
    """A fresh truss copy whose weights the runner has never seen, built without --cache-from
    (after the other builds: the runner's own BuildKit cache holds what --cache-from imported,
    so only new weights can show what a build without the registry's layers fetches)."""
    truss = ci.workspace / "runner" / "control" / "truss"
    shutil.copytree(ci.checkout, truss)
    (truss / "pack.lock").unlink(missing_ok=True)
    config = truss / "config.yaml"
    old = next(line for line in config.read_text().splitlines() if "repo_id:" in line).split("repo_id:")[1].strip()
    config.write_text(config.read_text().replace(old, new_weights(ci.hub)))
    run_pack(ci.env, "lock", str(truss))  # outside the counted build, as a developer commits pack.lock
    return ci.build(truss)


def test_engine_a_pushed_an_image_with_inline_cache(ci: Ci) -> None:
    assert ci.pushed["schema"] == "pack.push/v1"
    assert ci.pushed["digest"].startswith("sha256:")
    assert ci.pushed["cache"]["mode"] == "inline", ci.pushed["cache"]
    assert ci.pushed["weight_bytes_fetched"] == WEIGHT_BYTES  # engine A did download the weights


def test_cache_from_build_fetches_no_weight_bytes(cached: CiBuild) -> None:
    assert cached.hub_bytes == 0
    assert cached.doc["weight_bytes_fetched"] == 0
    assert cached.doc["weight_steps_run"] == 0


def test_cache_from_build_reports_the_weight_layers_cached(ci: Ci, cached: CiBuild) -> None:
    weights = cached.weight_steps()
    assert any(s.stage and s.stage.startswith("pack-weights") for s in weights), [s.name for s in cached.steps]
    assert any(s.instruction.startswith("COPY --from=pack-weights") for s in weights)
    assert [s.name for s in weights if not s.cached] == []
    # Nothing at all ran: the registry's image had every layer of this very truss.
    assert [s.name for s in cached.steps if not s.cached] == []
    assert cached.doc["built_steps"] == 0
    assert cached.doc["cached_steps"] >= len(weights)
    assert cached.doc["cache"]["from"] == [ci.ref]
    # The engine's own view: the runner's image is made of engine A's layers.
    assert cached.layers == ci.a_layers


def test_model_edit_rebuilds_only_the_code_layers(ci: Ci, edited: CiBuild) -> None:
    final, at = edited.final_stage()
    before, after = final[:at], final[at:]
    others = [s for s in edited.steps if s.stage != final[0].stage]
    assert [s.number for s in final] == list(range(2, final[-1].number + 1))  # every step announced
    assert [s.name for s in before if not s.cached] == []
    assert [s.name for s in after if s.cached] == []
    assert [s.name for s in others if not s.cached] == []  # the weight download stages
    assert any(s.instruction.startswith("COPY --from=pack-weights") for s in before)
    assert edited.doc["built_steps"] == len(after)
    assert edited.hub_bytes == 0
    assert edited.doc["weight_bytes_fetched"] == 0
    # Layers: the ones below the model code are engine A's, the model code layer is new.
    code_layers = sum(1 for s in after if s.instruction.split()[0] in ("COPY", "ADD", "RUN"))
    assert len(edited.layers) == len(ci.a_layers)
    assert edited.layers[:-code_layers] == ci.a_layers[:-code_layers]
    assert edited.layers[-code_layers] != ci.a_layers[-code_layers]


def test_without_cache_from_the_runner_fetches_every_weight_byte(control: CiBuild) -> None:
    """The control: the same runner, counters and truss shape, but no layers from the registry."""
    assert control.doc["cache"]["from"] == []
    downloads = [s for s in control.weight_steps()
                 if s.stage and s.stage.startswith("pack-weights") and s.instruction.startswith("RUN ")]
    assert downloads, [s.name for s in control.steps]
    assert [s.name for s in downloads if s.cached] == []
    if control.doc["retried"]:
        assert control.hub_bytes >= WEIGHT_BYTES  # an interrupted download step fetched again
    else:
        assert control.hub_bytes == WEIGHT_BYTES
    assert control.doc["weight_bytes_fetched"] == WEIGHT_BYTES
    assert control.doc["weight_steps_run"] >= 1
