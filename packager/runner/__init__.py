"""Stage 6: an image -> a running container, the way the platform would run it (host network,
secrets as read-only files, a named volume for the weight cache); a client for it; and a node's
weights fetched ahead of its containers (`pack fetch`)."""

from .client import predict
from .container import (
    READY_PATH,
    Running,
    cache_volume_name,
    default_container_name,
    gpu_request,
    source_endpoints,
    start,
    startup_timeline,
    timeline_from_logs,
)
from .secrets import host_secrets, secrets_mount
from .weights import fetch_manifest, read_manifest

__all__ = [
    "READY_PATH",
    "Running",
    "cache_volume_name",
    "default_container_name",
    "fetch_manifest",
    "gpu_request",
    "host_secrets",
    "predict",
    "read_manifest",
    "secrets_mount",
    "source_endpoints",
    "start",
    "startup_timeline",
    "timeline_from_logs",
]
