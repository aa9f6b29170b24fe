"""Where each resolved file lands in the image (truss-compat.md §2.1). Pure functions.

volume mode        /app/model_cache/<volume_folder>/<path relative to repo root / prefix>
bake mode, HF      <hf cache>/models--<org>--<name>/snapshots/<sha>/<path>
                   (<hf cache> = /root/.cache/huggingface/hub unless the model's
                   environment_variables move it; the transfer engine stores the bytes in
                   blobs/<hash digest> and links them here, so from_pretrained works offline)
bake mode, S3/GCS  /app/model_cache/<bucket>/<full object key>   (as Truss)
weights: sources   <mount_location>/<path relative to repo root / prefix>, bake or volume
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from packager.constants import MODEL_CACHE_DIR

HF_BAKE_CACHE_ROOT = "/root/.cache/huggingface/hub"


def hf_cache_root_for(environment_variables: Mapping[str, str] | None) -> str:
    """The bake location for HF repos given the model's config environment_variables."""
    env = environment_variables or {}
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(name):
            return posixpath.normpath(env[name])
    if env.get("HF_HOME"):
        return posixpath.join(posixpath.normpath(env["HF_HOME"]), "hub")
    return HF_BAKE_CACHE_ROOT


def hf_repo_folder(repo_id: str) -> str:
    """huggingface_hub's cache folder name for a model repo: models--org--name."""
    return "models--" + repo_id.replace("/", "--")


def volume_destination(volume_folder: str, relative_path: str) -> str:
    return f"{MODEL_CACHE_DIR}/{volume_folder}/{relative_path}"


def mount_destination(mount_location: str, relative_path: str) -> str:
    """`weights:` sources: the source's tree under mount_location, in every mode."""
    return posixpath.join(posixpath.normpath(mount_location), relative_path)


def hf_bake_destination(cache_root: str, repo_id: str, commit_sha: str, path: str) -> str:
    return f"{cache_root}/{hf_repo_folder(repo_id)}/snapshots/{commit_sha}/{path}"


def bucket_bake_destination(bucket: str, key: str) -> str:
    return f"{MODEL_CACHE_DIR}/{bucket}/{key}"


def unsafe_path_reason(path: str) -> str | None:
    """Why `path` cannot be placed under a folder (object keys may hold anything), or None."""
    if not path:
        return "it is empty"
    if "\x00" in path:
        return "it contains a NUL byte"
    if path.startswith("/"):
        return "it starts with '/'"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "it has an empty, '.' or '..' segment"
    return None
