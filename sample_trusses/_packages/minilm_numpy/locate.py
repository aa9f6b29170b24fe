"""Find the model files a truss received through `weights` or `model_cache`.

`weights:` sources (Truss's current weights API): the files are at the source's
`mount_location` before load() runs.

Volume mode (`use_volume: true`): the prefetcher places the files under
`/app/model_cache/<volume_folder>/`.
Bake mode (`use_volume: false`): the build bakes the Hugging Face cache layout,
`<hub cache>/models--<org>--<name>/{blobs,snapshots/<sha>/...,refs/<revision>}`, where the hub
cache is `$HF_HUB_CACHE`, else `$HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, else
`/root/.cache/huggingface/hub` (where the image bakes it; fixed rather than `~` because the
server may run as a non-root user).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from collections.abc import Iterable, Mapping

DEFAULT_REPO_ID = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_CACHE_ROOT = Path("/app/model_cache")
DEFAULT_HUB_CACHE = Path("/root/.cache/huggingface/hub")
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")
_SHA = re.compile(r"^[0-9a-f]{40}$")


def hub_cache_dir(environ: Mapping[str, str] | None = None) -> tuple[Path, str]:
    """The Hugging Face hub cache directory and a phrase saying where it came from."""
    env = os.environ if environ is None else environ
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(var):
            return Path(env[var]), f"${var}"
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]) / "hub", "$HF_HOME/hub"
    return DEFAULT_HUB_CACHE, "the default (no HF_HUB_CACHE / HF_HOME set)"


def _missing(folder: Path, required: Iterable[str]) -> list[str]:
    return [name for name in required if not (folder / name).is_file()]


def _listing(folder: Path, limit: int = 12) -> str:
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError:
        return "(unreadable)"
    if not names:
        return "(empty)"
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def find_model_dir(
    volume_folder: str | None = None,
    repo_id: str = DEFAULT_REPO_ID,
    revision: str = "",
    *,
    mount_location: os.PathLike | str | None = None,
    model_cache_root: os.PathLike | str | None = None,
    hub_cache: os.PathLike | str | None = None,
    required_files: Iterable[str] = REQUIRED_FILES,
) -> Path:
    """Directory holding the checkpoint's files.

    With `mount_location` (a `weights:` source): that directory. With `volume_folder`:
    `<model_cache_root>/<volume_folder>` (volume mode). Without either: the snapshot of
    `repo_id` in the HF cache, chosen by `refs/<revision>` (`refs/main` for an empty revision),
    or `snapshots/<revision>` when the revision is a commit sha, or else the only snapshot
    present. Raises FileNotFoundError naming every place looked at.
    """
    required = tuple(required_files)
    if mount_location:
        folder = Path(mount_location)
        missing = _missing(folder, required) if folder.is_dir() else list(required)
        if missing:
            raise FileNotFoundError(
                f"model files missing at mount_location {folder}: {', '.join(missing)} "
                f"(present: {_listing(folder) if folder.is_dir() else 'the directory does not exist'}). "
                f"Check weights[].source and allow_patterns in config.yaml."
            )
        return folder
    if volume_folder:
        root = Path(model_cache_root) if model_cache_root is not None else MODEL_CACHE_ROOT
        folder = root / volume_folder
        if not folder.is_dir():
            raise FileNotFoundError(
                f"model_cache volume folder {folder} does not exist "
                f"({root}: {_listing(root) if root.is_dir() else 'missing'}). Check "
                f"model_cache[].volume_folder in config.yaml and call "
                f"lazy_data_resolver.block_until_download_complete() before reading files."
            )
        missing = _missing(folder, required)
        if missing:
            raise FileNotFoundError(
                f"model files missing in volume folder {folder}: {', '.join(missing)} "
                f"(present: {_listing(folder)}). Check model_cache[].allow_patterns / "
                f"ignore_patterns, and that the download completed."
            )
        return folder

    if not repo_id or "/" not in repo_id or "://" in repo_id:
        raise ValueError(f"bake mode expects a Hugging Face repo id `owner/name`, got {repo_id!r}")
    if hub_cache is not None:
        cache, origin = Path(hub_cache), "the hub_cache argument"
    else:
        cache, origin = hub_cache_dir()
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    if not repo_dir.is_dir():
        present = (
            ", ".join(sorted(p.name for p in cache.glob("models--*"))) or "none"
            if cache.is_dir() else f"{cache} does not exist"
        )
        raise FileNotFoundError(
            f"no Hugging Face cache entry for {repo_id}: looked for {repo_dir} (hub cache from "
            f"{origin}; repos cached there: {present}). In bake mode the build puts the files "
            f"there: check model_cache[].repo_id and use_volume: false, or set HF_HUB_CACHE."
        )

    ref_name = revision or "main"
    ref_file = repo_dir / "refs" / ref_name
    snapshots = repo_dir / "snapshots"
    looked = [str(ref_file)]
    snapshot: Path | None = None
    if ref_file.is_file():
        sha = ref_file.read_text(encoding="utf-8").strip()
        snapshot = snapshots / sha
        if not snapshot.is_dir():
            raise FileNotFoundError(
                f"{ref_file} points at commit {sha}, but {snapshot} does not exist "
                f"(snapshots present: {_listing(snapshots) if snapshots.is_dir() else 'none'})"
            )
    elif _SHA.match(revision) and (snapshots / revision).is_dir():
        snapshot = snapshots / revision
    else:
        if _SHA.match(revision):
            looked.append(str(snapshots / revision))
        found = sorted(p for p in snapshots.iterdir() if p.is_dir()) if snapshots.is_dir() else []
        if len(found) == 1:
            snapshot = found[0]
        else:
            raise FileNotFoundError(
                f"cannot pick a snapshot of {repo_id} for revision {revision or '(empty)'!r}: "
                f"looked for {' and '.join(looked)}; "
                f"{len(found)} snapshots under {snapshots}"
                + (f" ({', '.join(p.name for p in found)})" if found else "")
                + ". Set model_cache[].revision to the revision that was baked."
            )
    missing = _missing(snapshot, required)
    if missing:
        raise FileNotFoundError(
            f"model files missing in {snapshot}: {', '.join(missing)} "
            f"(present: {_listing(snapshot)}). Check model_cache[].allow_patterns."
        )
    return snapshot


def model_dir_for(config: Mapping) -> Path:
    """The checkpoint directory for a truss config (the `config` kwarg a Model receives):
    `weights[0].mount_location`, else model_cache[0] in volume mode (`volume_folder`), else the
    baked Hugging Face snapshot of model_cache[0]."""
    weights = config.get("weights") or []
    if weights:
        return find_model_dir(mount_location=weights[0]["mount_location"])
    entry = (config.get("model_cache") or [{}])[0]
    if entry.get("use_volume"):
        return find_model_dir(volume_folder=entry.get("volume_folder") or "minilm")
    return find_model_dir(repo_id=entry.get("repo_id") or DEFAULT_REPO_ID, revision=entry.get("revision") or "")
