"""The weight transfer engine: parallel, ranged, verified, resumable, cache-sharing downloads.

Runs inside images (standard library only; boto3 / google-auth imported lazily for s3 / gcs
entries) and on hosts via `pack fetch`.

    from packager.runtime.transfer import fetch, TransferFailed
    result = fetch(manifest, "/data/weights", cache_dir="/var/cache/pack", stats_path="s.json")

Module map: api (fetch), engine (thread pool + queue), download (per-file work), job (work
units), sources / http_source / http_pool / s3_source / gcs_source (byte sources),
ordered_hash + digests (verification), journal (resume), cache (shared blobs), layout (paths,
markers), credentials, progress (reporters), results, settings, errors.
"""

from .api import fetch
from .errors import FileFailure, TransferFailed
from .layout import UnsafeDestination
from .progress import LogReporter, NullReporter, Reporter
from .results import FetchResult, FileResult
from .settings import TransferSettings
from .space import InsufficientSpace

__all__ = [
    "FetchResult",
    "FileFailure",
    "FileResult",
    "InsufficientSpace",
    "LogReporter",
    "NullReporter",
    "Reporter",
    "TransferFailed",
    "TransferSettings",
    "UnsafeDestination",
    "fetch",
]
