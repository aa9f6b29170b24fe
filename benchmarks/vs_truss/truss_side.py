"""Truss 0.18.30's own image for a truss, made to build and run on this offline machine.

`truss image build-context` writes the context exactly as `truss image build` would; then
`patch_context` changes only what cannot work here, and returns each change as a sentence for the
benchmark's output. A change whose text is not found is not made and not reported, so the list
is exactly what differs from Truss's context. What a Baseten node provides at run time (the
config's environment variables, the b10cache mount and its switches) is `run_env` / `run_mounts`.

The base image: Truss builds FROM baseten/truss-server-base:3.11-v0.13.0, which cannot be pulled
here. `STANDIN_BASE_DOCKERFILE` builds its stand-in with Truss's own recipe for that image
(truss repository, docker/base_images/base_image.Dockerfile.jinja, CPU branch: FROM python:<v>,
`apt update`, PYTHONUNBUFFERED, pip upgrade, `pip install -r` of the server requirements) on top of
pack's offline base pack-base:bookworm-py311 (Debian bookworm, Python 3.11, the host CA bundle)
instead of python:3.11, with the server requirements.txt of the installed Truss 0.18.30. So the
stand-in already holds every server package at the versions the context asks for: Truss's own
`uv pip install` step then finds them installed, as it would on the published base. It is
smaller than the real base (python:3.11 is the full Debian image with compilers, ~1 GB), which
favours Truss in the size figure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TRUSS_VENV = Path("/opt/pack-truss-venv")
TRUSS_CLI = TRUSS_VENV / "bin" / "truss"
TRUSS_TEMPLATES = TRUSS_VENV / "lib/python3.11/site-packages/truss/templates"
TRUSS_BASE = "baseten/truss-server-base:3.11-v0.13.0"
UV_VERSION = "0.10.0"  # the version Truss's Dockerfile installs from astral.sh
B10CACHE_DIR = "/cache/org/artifacts"  # where a Baseten node mounts b10fs (truss_transfer's CACHE_DIR parent)

PYDANTIC_PIN = "pydantic<2.14"
STANDIN_BASE_DOCKERFILE = """\
# Stand-in for {truss_base}: Truss's base-image recipe (CPU) on pack's offline base.
FROM {pack_base}
RUN apt update && apt install -y
ENV PYTHONUNBUFFERED="True"
RUN pip install --no-cache-dir --upgrade pip && rm -rf /root/.cache/pip
COPY ./requirements.txt requirements.txt
RUN pip install --no-cache-dir -r requirements.txt "{pydantic_pin}" && rm -rf /root/.cache/pip
"""
# How the stand-in differs from the published base (printed with the results).
STANDIN_NOTES = [
    f"base image {TRUSS_BASE} (not pullable here) -> a stand-in built by Truss's own base recipe "
    "(docker/base_images/base_image.Dockerfile.jinja, CPU) FROM pack-base:bookworm-py311 instead of python:3.11, "
    "with Truss 0.18.30's server requirements.txt preinstalled (so Truss's own `uv pip install` finds them); "
    "smaller than the real base (python:3.11 is ~1 GB): favours Truss in size",
    f"stand-in base: `{PYDANTIC_PIN}`: with pydantic 2.14 (today's newest on PyPI) Truss 0.18.30's generated "
    "chainlet fails at load (`KeyError: 'model'` in pydantic/_internal/_generics.py create_generic_submodel: "
    "Truss's model_wrapper execs model.py as module `model` without registering it in sys.modules and 2.14 looks "
    "the caller's module up there); the published base carries an older pydantic, which Truss's install keeps",
]


def standin_base_context(directory: Path, pack_base: str) -> Path:
    """The build context of the base stand-in (Dockerfile + Truss's server requirements.txt)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(STANDIN_BASE_DOCKERFILE.format(truss_base=TRUSS_BASE, pack_base=pack_base,
                                                                         pydantic_pin=PYDANTIC_PIN))
    shutil.copyfile(TRUSS_TEMPLATES / "server" / "requirements.txt", directory / "requirements.txt")
    return directory


@dataclass
class Offline:
    """What stands in for the internet: the images and the HF stand-in's address."""

    standin_base: str  # tag of the stand-in for TRUSS_BASE
    pack_base: str  # pack's offline base (also replaces python:3.11-slim where a config names it)
    hf_endpoint: str  # the HF stand-in (http://127.0.0.1:PORT)
    server_port: int  # docker_server images: nginx's port (Truss bakes 8080 into proxy.conf)


@dataclass
class Context:
    directory: Path
    seconds: float  # `truss image build-context`, this machine's clock
    changes: list[str] = field(default_factory=list)


def build_context(truss_dir: Path, out_dir: Path, env: dict[str, str]) -> float:
    """Run `truss image build-context`; returns its wall time."""
    t = time.monotonic()
    proc = subprocess.run([str(TRUSS_CLI), "image", "build-context", "--non-interactive", str(out_dir), str(truss_dir)],
                          env=env, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - t
    if proc.returncode != 0 or not (out_dir / "Dockerfile").is_file():
        raise RuntimeError(f"truss image build-context {truss_dir} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds


def chain_codegen(source: Path, entrypoint: str, out_dir: Path, env: dict[str, str]) -> tuple[float, dict[str, Path]]:
    """Truss Chains' own truss per chainlet: `truss chains push --dryrun` generates them (into
    $TMPDIR/.chains_generated/<chain>/chainlet_<Class>; TMPDIR is pointed at `out_dir`) and
    deploys nothing. Returns its wall time and the chainlet directories by class name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    proc = subprocess.run([str(TRUSS_CLI), "chains", "push", "--dryrun", str(source), entrypoint],
                          env={**env, "TMPDIR": str(out_dir)}, cwd=source.parent, capture_output=True, text=True,
                          timeout=600)
    seconds = time.monotonic() - t
    dirs = {p.name.removeprefix("chainlet_"): p for p in out_dir.glob(".chains_generated/*/chainlet_*")}
    if proc.returncode != 0 or entrypoint not in dirs:
        raise RuntimeError(f"truss chains push --dryrun {source} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds, dirs


Patch = Callable[[str, Offline], str]


def _sub(pattern: str, replacement: str, flags: int = 0) -> Patch:
    return lambda text, offline: re.sub(pattern, replacement.format(o=offline), text, flags=flags)


# (file in the context, what the change is for the reader, the change). Order matters only where
# two patches touch the same lines.
PATCHES: list[tuple[str, str, Patch]] = [
    ("Dockerfile",
     f"FROM {TRUSS_BASE} -> the stand-in base (see the notes on the stand-in)",
     _sub(r"^FROM baseten/truss-server-base:\S+", "FROM {o.standin_base}", re.M)),
    ("Dockerfile",
     "FROM python:3.11-slim -> pack-base:bookworm-py311 (config base_image / bake stage; not pullable; pack gets the "
     "same --base-image)",
     _sub(r"^FROM python:3\.11-slim\b", "FROM {o.pack_base}", re.M)),
    ("Dockerfile",
     "python_executable_path /usr/local/bin/python3 (python:3.11-slim's) -> /usr/bin/python3 (pack-base's)",
     _sub(r"/usr/local/bin/python3\b", "/usr/bin/python3")),
    ("Dockerfile",
     f"uv {UV_VERSION}: `curl https://astral.sh/uv/{UV_VERSION}/install.sh | sh` (astral.sh unreachable) -> "
     f"`pip install uv=={UV_VERSION}` from PyPI",
     _sub(r"curl -LsSf [^\n]*astral\.sh/uv/[^\n]*\| sh && \\\n\s*test -x \$\{HOME\}/\.local/bin/uv;",
          f"pip install --no-cache-dir uv=={UV_VERSION} && \\\\\n    command -v uv;")),
    ("Dockerfile",
     "truss-transfer-cli: the musl binary from github.com (unreachable) -> a two-line script calling the same Rust "
     "entrypoint through the truss_transfer wheel already installed (truss_transfer.lazy_data_resolve)",
     _sub(r"^RUN curl [^\n]*-o /usr/local/bin/truss-transfer-cli https://github\.com/[^\n]*$",
          "RUN printf '#!/bin/sh\\\\nexec python3 -c \"import sys, truss_transfer; "
          "truss_transfer.lazy_data_resolve(sys.argv[1] if len(sys.argv) > 1 else None)\" \"$@\"\\\\n' "
          "> /usr/local/bin/truss-transfer-cli", re.M)),
    ("Dockerfile",
     "bake stage: b10cp (Baseten's S3/GCS downloader, unused for HF repos) not fetched from "
     "baseten-public.s3.us-west-2.amazonaws.com (unreachable)",
     _sub(r"; curl -s https://baseten-public\.s3[^\n;]*-o /app/b10cp; chmod \+x /app/b10cp", "")),
    ("Dockerfile",
     "bake stage: ENV HF_ENDPOINT=<HF stand-in> so that its huggingface_hub downloads from the stand-in",
     _sub(r"^(FROM \S+ AS cache_warmer)$", "\\1\nENV HF_ENDPOINT={o.hf_endpoint}", re.M)),
    ("Dockerfile",
     "docker_server: `uv python install 3.14` (python-build-standalone from github.com, unreachable) dropped; "
     "supervisord's venv uses the base's Python 3.11",
     lambda text, offline: re.sub(r"^RUN env -i [^\n]* uv python install 3\.14\n", "",
                                  text.replace("--python 3.14", "--python /usr/bin/python3"), flags=re.M)),
    ("Dockerfile",
     "docker_server: SUPERVISOR_SERVER_URL port 8080 -> the benchmark's port (host network, shared machine)",
     _sub(r"SUPERVISOR_SERVER_URL=\"http://localhost:8080\"", "SUPERVISOR_SERVER_URL=\"http://localhost:{o.server_port}\"")),
    ("proxy.conf",
     "docker_server: nginx `listen 8080` -> the benchmark's port (host network, shared machine)",
     _sub(r"listen 8080;", "listen {o.server_port};")),
    ("bptr-manifest",
     "model_cache manifest (written by truss_transfer through the huggingface.co proxy): URL host "
     "https://huggingface.co -> the HF stand-in, as HF_ENDPOINT does for pack (truss_transfer reads no HF_ENDPOINT)",
     _sub(r"https://huggingface\.co/", "{o.hf_endpoint}/")),
]


def patch_context(directory: Path, offline: Offline) -> list[str]:
    """Apply PATCHES in place; the descriptions of those that changed something."""
    changes = []
    for name, description, patch in PATCHES:
        path = directory / name
        if not path.is_file():
            continue
        before = path.read_text()
        after = patch(before, offline)
        if after != before:
            path.write_text(after)
            changes.append(f"{name}: {description}")
    reachable = r"pypi\.org|files\.pythonhosted\.org|deb\.debian\.org"
    unreachable = [line for line in (directory / "Dockerfile").read_text().splitlines()
                   if re.search(rf"\b(curl|wget)\b.*https?://(?!{reachable})", line)]
    if unreachable:
        raise RuntimeError("Truss's Dockerfile still names hosts this machine cannot reach:\n" + "\n".join(unreachable))
    return changes


def make_context(truss_dir: Path, out_dir: Path, offline: Offline, env: dict[str, str]) -> Context:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    seconds = build_context(truss_dir, out_dir, env)
    return Context(out_dir, seconds, patch_context(out_dir, offline))


def docker_build(context: Path, tag: str, env: dict[str, str],
                 docker_cli: str = "/usr/bin/docker") -> tuple[float, str]:
    """`docker build` of a Truss context with BuildKit on the host network; returns the wall time
    and BuildKit's plain log."""
    t = time.monotonic()
    proc = subprocess.run([docker_cli, "build", "--network", "host", "--progress", "plain", "-t", tag, str(context)],
                          env={**env, "DOCKER_BUILDKIT": "1"}, capture_output=True, text=True, timeout=1800)
    seconds = time.monotonic() - t
    if proc.returncode != 0:
        raise RuntimeError(f"docker build of {context} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return seconds, proc.stderr


def config_env(truss_dir: Path) -> dict[str, str]:
    """config.yaml's environment_variables: the platform sets them on Truss's container (Truss's
    image does not carry them; pack's does)."""
    import yaml

    config = yaml.safe_load((truss_dir / "config.yaml").read_text()) or {}
    return {str(k): str(v) for k, v in (config.get("environment_variables") or {}).items()}


def uses_b10cache(context: Path) -> bool:
    return (context / "bptr-manifest").is_file()


def run_env(truss_dir: Path, context: Path, port: int) -> dict[str, str]:
    """The environment a Baseten node gives Truss's container, as far as this image reads it."""
    env = {**config_env(truss_dir), "INFERENCE_SERVER_PORT": str(port)}
    if uses_b10cache(context):
        # A node mounts b10fs at B10CACHE_DIR and turns it on; truss_transfer 0.0.44 (what the
        # server requirements install) reads and writes it only when both switches are set, and
        # writes only with 100 GB free on it (a constant there: the caller mounts a filesystem
        # that large, see vs_truss.py's node cache).
        env.update(BASETEN_FS_ENABLED="1", USE_BASETEN_FS_TRUSS_TRANSFER="1")
    return env


def run_mounts(context: Path) -> list[str]:
    """Container paths a node backs with its cache (b10fs) for this image: none, or one."""
    return [B10CACHE_DIR] if uses_b10cache(context) else []


def manifest_bytes(context: Path) -> int:
    if not uses_b10cache(context):
        return 0
    return sum(int(p["size"]) for p in json.loads((context / "bptr-manifest").read_text())["pointers"])


def truss_env(extra: dict[str, str]) -> dict[str, str]:
    """Environment for the truss CLI: ruff on PATH (truss_chains formats generated code with it)."""
    venv_bin = str(Path(__file__).resolve().parents[2] / ".venv" / "bin")
    return {**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""), **extra}
