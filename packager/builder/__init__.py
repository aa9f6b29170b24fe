"""Stage 4: plan -> rendered context -> image, with the engine the machine has (or one given).

image.py orchestrates render and engine; secrets.py resolves the build's credentials on the host
into BuildKit secret files; record.py remembers what the last build of a truss used (for
`pack run`)."""

from .image import ENDPOINT_ARGS, BuildResult, base_image_facts, build_image, context_dir_for, endpoint_build_args
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
    "needed_secrets",
    "read_record",
    "record_path",
    "secret_files",
    "write_record",
]
