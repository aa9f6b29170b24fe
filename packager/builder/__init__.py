"""Stage 4: plan -> rendered context -> image, with the engine the machine has (or one given).

image.py orchestrates render and engine; secrets.py resolves the build's credentials on the host
into BuildKit secret files; record.py remembers what the last build of a truss used (for
`pack run`); labels.py names the truss on what the engine keeps; cache_mounts.py finds pack's
entries in the BuildKit cache."""

from .cache_mounts import is_pack_cache_mount, pack_cache_mounts
from .image import ENDPOINT_ARGS, BuildResult, base_image_facts, build_image, context_dir_for, endpoint_build_args
from .labels import truss_key, truss_labels, truss_selector
from .record import BuildRecord, read_record, record_path, write_record
from .secrets import needed_secrets, secret_files

__all__ = [
    "ENDPOINT_ARGS",
    "BuildRecord",
    "BuildResult",
    "base_image_facts",
    "build_image",
    "context_dir_for",
    "endpoint_build_args",
    "is_pack_cache_mount",
    "pack_cache_mounts",
    "needed_secrets",
    "read_record",
    "record_path",
    "secret_files",
    "truss_key",
    "truss_labels",
    "truss_selector",
    "write_record",
]
