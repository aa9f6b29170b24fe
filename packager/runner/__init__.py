"""Stage 6: an image -> a running container, the way the platform would run it (host network,
secrets as read-only files, a named volume for the weight cache); a client for it; and a node's
weights fetched ahead of its containers (`pack fetch`).

Names are imported on first use: `pack fetch` needs weights.py only, not the engine or the
build stage that container.py brings.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "PredictAnswer": ".client",
    "answer_text": ".client",
    "predict": ".client",
    "predict_stream": ".client",
    "CACHE_VOLUME_PREFIX": ".container",
    "READY_PATH": ".container",
    "OutputFollower": ".container",
    "Running": ".container",
    "cache_volume_name": ".container",
    "default_container_name": ".container",
    "shut_down": ".container",
    "gpu_request": ".container",
    "source_endpoints": ".container",
    "start": ".container",
    "startup_timeline": ".container",
    "timeline_from_logs": ".container",
    "wait_exit": ".container",
    "readable": ".log_lines",
    "host_secrets": ".secrets",
    "secrets_mount": ".secrets",
    "fetch_manifest": ".weights",
    "read_manifest": ".weights",
}

if TYPE_CHECKING:
    from .client import PredictAnswer, answer_text, predict, predict_stream
    from .container import (
        CACHE_VOLUME_PREFIX,
        READY_PATH,
        OutputFollower,
        Running,
        cache_volume_name,
        default_container_name,
        gpu_request,
        shut_down,
        source_endpoints,
        start,
        startup_timeline,
        timeline_from_logs,
        wait_exit,
    )
    from .log_lines import readable
    from .secrets import host_secrets, secrets_mount
    from .weights import fetch_manifest, read_manifest


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CACHE_VOLUME_PREFIX",
    "READY_PATH",
    "OutputFollower",
    "PredictAnswer",
    "Running",
    "answer_text",
    "cache_volume_name",
    "default_container_name",
    "fetch_manifest",
    "gpu_request",
    "host_secrets",
    "predict",
    "readable",
    "predict_stream",
    "read_manifest",
    "secrets_mount",
    "shut_down",
    "source_endpoints",
    "start",
    "startup_timeline",
    "timeline_from_logs",
    "wait_exit",
]
