"""Running an image locally the way the platform would: host network, secrets as read-only
files under /secrets, a named volume for the weight cache so a restart does not download again."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .engine import ContainerHandle, open_engine, wait_ready
from .errors import PackError
from .plan.model import BuildPlan
from .render.context import RUNTIME_CACHE_DIR

READY_PATH = "/v1/models/model"


@dataclass(frozen=True)
class Running:
    container: ContainerHandle
    url: str
    ready_seconds: float
    timeline: dict | None


def cache_volume_name(plan: BuildPlan) -> str:
    return "pack-weights-" + (re.sub(r"[^a-z0-9_.-]+", "-", plan.model_name.lower()).strip("-.") or "model")


def start(image: str, plan: BuildPlan, *, port: int = 8080, secrets_dir: str | Path | None = None,
          env: dict[str, str] | None = None, name: str | None = None, timeout: float = 600.0) -> Running:
    """Run the image on the host network and wait until its readiness route answers 200."""
    engine = open_engine()
    container = engine.run(image, port=port, env=env or {}, secrets_dir=secrets_dir,
                           volumes={cache_volume_name(plan): RUNTIME_CACHE_DIR}, name=name, replace=True)
    url = f"http://127.0.0.1:{port}"
    seconds = wait_ready(url + READY_PATH, timeout, container=container)
    return Running(container, url, seconds, startup_timeline(url))


def startup_timeline(url: str) -> dict | None:
    """The runtime's start-up timeline (/metrics carries it as JSON in a comment line)."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
            text = response.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError):
        return None
    for line in text.splitlines():
        if line.startswith("# pack_startup_timeline "):
            try:
                return json.loads(line.split(" ", 2)[2])
            except (json.JSONDecodeError, IndexError):
                return None
    return None


def predict(url: str, payload: object, *, model: str = "model", timeout: float = 600.0) -> object:
    """POST a JSON payload to a running model's predict route and return the decoded answer."""
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/models/{model}:predict", data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:2000]
        raise PackError(f"the model answered HTTP {exc.code}: {detail}",
                        hint="check the input, or the container logs (docker logs <name>)") from None
    except (urllib.error.URLError, OSError) as exc:
        raise PackError(f"no model answers at {url}: {getattr(exc, 'reason', exc)}",
                        hint="start one with `pack run DIR`, or pass --url") from None
    del started
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return body.decode("utf-8", "replace")
