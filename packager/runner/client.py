"""Talking to a running model: the prediction request `pack predict` sends."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from ..errors import PackError


def predict(url: str, payload: object, *, model: str = "model", timeout: float = 600.0) -> object:
    """POST a JSON payload to a running model's predict route and return the decoded answer."""
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/models/{model}:predict", data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
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
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return body.decode("utf-8", "replace")
