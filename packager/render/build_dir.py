"""Write a build context: the plan's files, byte-identical for equal plans, all or nothing.

The context is assembled in a sibling temporary directory and renamed into place, so a reader
(or a concurrent `docker build`) never sees half a context. Every file gets normalised mode bits,
so equal inputs give identical bytes and an identical digest. Modification times are left as
written: BuildKit's context sync skips files whose size and mtime look unchanged, so a fixed
mtime would let it keep a stale file (layer caching itself is by content, so nothing is lost).
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path


import packager
from packager.errors import RenderError
from packager.plan.context_sources import DEV_RUNTIME_PACKAGE, ContextSources
from packager.plan.model import BuildPlan
from packager.templating import render

from .code_layout import config_files
from .fetcher_files import write_fetcher
from .context import (
    CONTEXT_PACK_DIR,
    DEV_RUNTIME_DIR,
    EXTERNAL_DATA_FILE,
    FETCHER_DIR,
    INSTALLER_DIR,
    INSTALLER_MOUNT,
    TRUSS_SERVER_DIR,
    WEIGHTS_LINKS_FILE,
    external_data_items,
    stage_manifests,
    template_context,
)

DOCKERIGNORE = ("# The context holds exactly what the image needs; nothing else may slip in.\n"
                "**/__pycache__\n**/*.pyc\n**/.git\n")


@dataclass(frozen=True)
class RenderedContext:
    path: Path
    digest: str
    files: int
    bytes: int
    notes: tuple[str, ...]


def _copy_tree(sources: ContextSources, src: Path, dest: Path, exclude_top: tuple[str, ...] = ()) -> None:
    """Copy src's tree to dest, less the skipped names and `exclude_top` (files or directories
    directly in src)."""
    def skip(name: str) -> bool:
        return name in sources.skip_names or name.endswith(sources.skip_suffixes)

    for root, dirs, files in os.walk(src, followlinks=False):
        rel = Path(root).relative_to(src)
        dirs[:] = sorted(d for d in dirs if not skip(d) and not (rel == Path(".") and d in exclude_top))
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            if skip(name) or (rel == Path(".") and name in exclude_top):
                continue
            source = Path(root) / name
            if source.is_symlink() and not source.exists():
                raise RenderError(f"{source} is a broken symbolic link", hint="remove it or point it at a file")
            shutil.copyfile(source, dest / rel / name)


def _runtime_files(sources: ContextSources, dest: Path) -> None:
    """pack's in-image runtime: packager/__init__.py, constants.py and runtime/ (a leaf package),
    without the reload control (dev images get it as a layer of its own: _write_files)."""
    package = Path(packager.__file__).parent
    target = dest / "packager"
    target.mkdir(parents=True)
    for name in ("__init__.py", "constants.py"):
        shutil.copyfile(package / name, target / name)
    _copy_tree(sources, package / "runtime", target / "runtime", exclude_top=(DEV_RUNTIME_PACKAGE,))


def _normalise(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        os.chmod(path, 0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)


def context_digest(root: Path) -> tuple[str, int, int]:
    """sha256 over (relative path, mode, content) of every file in sorted order."""
    digest = hashlib.sha256()
    count = size = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        rel = path.relative_to(root).as_posix()
        digest.update(f"{rel}\0{oct(path.stat().st_mode & 0o777)}\0{len(data)}\0".encode())
        digest.update(data)
        count += 1
        size += len(data)
    return digest.hexdigest(), count, size


def _write_links_tar(plan: BuildPlan, path: Path) -> None:
    """The baked Hugging Face snapshots as huggingface_hub lays them out: relative symlinks to
    the blobs and the refs files, in one reproducible archive that ADD unpacks at /."""
    layers = plan.weight_layers
    members: dict[str, tarfile.TarInfo] = {}

    def add(name: str, kind: bytes, **fields: object) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name.lstrip("/"))
        info.type, info.mtime, info.uid, info.gid, info.uname, info.gname = kind, 0, 0, 0, "root", "root"
        for key, value in fields.items():
            setattr(info, key, value)
        members[info.name] = info
        return info

    def add_dirs(file_path: str) -> None:
        # Only the directories inside the repo folder: parents such as /root keep their modes.
        repo_dir = file_path.split("/snapshots/", 1)[0].split("/refs/", 1)[0]
        parent = posixpath.dirname(file_path)
        while parent.startswith(repo_dir + "/"):
            add(parent, tarfile.DIRTYPE, mode=0o755)
            parent = posixpath.dirname(parent)

    data: dict[str, bytes] = {}
    for link in layers.links:
        add_dirs(link.path)
        add(link.path, tarfile.SYMTYPE, linkname=link.target, mode=0o777)
    for ref, sha in layers.refs:
        add_dirs(ref)
        data[ref.lstrip("/")] = sha.encode()
        add(ref, tarfile.REGTYPE, mode=0o644, size=len(sha.encode()))
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(members):
            info = members[name]
            archive.addfile(info, io.BytesIO(data[name]) if name in data else None)


def _check_no_secret_values(root: Path, values: frozenset[str]) -> None:
    """Literal secret values from config.yaml must not reach the image by any path."""
    needles = [v.encode() for v in values if len(v) >= 4]
    if not needles:
        return
    # pack's uv is bound into install steps, never a file of the image; a short value could match
    # somewhere in its 50 MB by chance.
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p != root / INSTALLER_DIR / "uv"):
        data = path.read_bytes()
        if any(n in data for n in needles):
            raise RenderError(
                f"{path.relative_to(root)} contains the value of a secret written in config.yaml",
                hint="remove the value from that file; supply secrets at run time (/secrets/<name>)",
            )


def _write_installer(plan: BuildPlan, installer: Path) -> None:
    """The requirement steps' installer and, when pack has one, the uv it runs. The binary is
    linked (or copied with its times), so an unchanged uv is an unchanged file to BuildKit: not
    sent with the context again, and its checksum is not computed again."""
    installer.mkdir(parents=True)
    uv_path = f"{INSTALLER_MOUNT}/uv"
    (installer / "install").write_text(render("installer/install.sh.j2", uv_path=uv_path, python=plan.base.python))
    if plan.sources.uv_binary is None:
        return
    try:
        os.link(plan.sources.uv_binary, installer / "uv")
    except OSError:  # another filesystem, or links refused
        shutil.copy2(plan.sources.uv_binary, installer / "uv")


def _write_files(plan: BuildPlan, out: Path) -> None:
    sources = plan.sources
    pack_dir = out / CONTEXT_PACK_DIR
    _runtime_files(sources, pack_dir / "runtime")
    if plan.weight_layers.layers or plan.external_data:
        write_fetcher(pack_dir / FETCHER_DIR)
    _write_installer(plan, out / INSTALLER_DIR)
    if sources.server_requirements:
        (pack_dir / "server-requirements.txt").write_text("\n".join(sources.server_requirements) + "\n")
    if plan.server_packages.packages:
        # Truss's own files, cut to what this truss needs: pip -r with -c, as Truss installs them.
        (pack_dir / TRUSS_SERVER_DIR).mkdir()
        (pack_dir / TRUSS_SERVER_DIR / "requirements.txt").write_text(
            "\n".join(plan.server_packages.requirement_lines) + "\n")
        (pack_dir / TRUSS_SERVER_DIR / "constraints.txt").write_text(
            "".join(line + "\n" for line in plan.server_packages.constraint_lines))
    if plan.requirements.kind in ("list", "pip", "pyproject"):
        (pack_dir / "requirements.txt").write_text("\n".join(plan.requirements.lines) + "\n")
    if sources.uv_project is not None:
        (pack_dir / "uv").mkdir()
        shutil.copyfile(sources.uv_project[0], pack_dir / "uv" / "uv.lock")
        shutil.copyfile(sources.uv_project[1], pack_dir / "uv" / "pyproject.toml")
    if sources.ca_bundle:
        shutil.copyfile(sources.ca_bundle, pack_dir / "ca-bundle.crt")
    for name, text in stage_manifests(plan).items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if plan.weight_layers.links or plan.weight_layers.refs:
        _write_links_tar(plan, out / WEIGHTS_LINKS_FILE)
    if plan.external_data:
        (out / EXTERNAL_DATA_FILE).write_text(external_data_items(plan))
    if plan.prefetch_manifest is not None:
        (pack_dir / "weights").mkdir(parents=True, exist_ok=True)
        (pack_dir / "weights" / "manifest.json").write_text(plan.prefetch_manifest.to_json())
    if sources.data_dir:
        _copy_tree(sources, Path(sources.data_dir), out / "data", exclude_top=sources.data_excluded)
    if sources.model_dir:
        _copy_tree(sources, Path(sources.model_dir), out / "model")
    for package_dir in sources.package_dirs:
        _copy_tree(sources, Path(package_dir), out / "packages")
    # The last layer: config.yaml for users and Truss tools, and the same document as JSON for
    # the runtime (which then needs no YAML parser, even in a bare docker_server base image).
    for name, content in config_files(sources).items():
        (out / "app" / name).parent.mkdir(parents=True, exist_ok=True)
        (out / "app" / name).write_bytes(content)
    if plan.dev:
        if sources.dev_runtime is None:
            raise RenderError("the plan is for a dev image, but its sources name no reload control to copy",
                              hint="plan it again with BuildOptions(dev=True)")
        _copy_tree(sources, Path(sources.dev_runtime), out / DEV_RUNTIME_DIR)
    (out / "Dockerfile").write_text(render("Dockerfile.j2", **template_context(plan).variables()))
    (out / ".dockerignore").write_text(DOCKERIGNORE)


def render_context(plan: BuildPlan, out: Path) -> RenderedContext:
    """Write the build context of `plan` at `out`, replacing what was there atomically. A
    function of the plan alone: every file and value comes from it (plan.sources)."""
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise RenderError(f"{out} exists and is not a directory", hint="choose another output path")
    truss_dir = Path(plan.sources.truss_dir)
    if out.resolve().is_relative_to(truss_dir):
        raise RenderError(f"{out} is inside the truss directory {truss_dir}",
                          hint="render to a directory outside the truss (it would copy itself)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.render-", dir=out.parent))
    try:
        _write_files(plan, staging)
        _check_no_secret_values(staging, plan.sources.literal_secret_values)
        _normalise(staging)
        digest, files, size = context_digest(staging)
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
        staging.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RenderedContext(out, digest, files, size, plan.notes)
