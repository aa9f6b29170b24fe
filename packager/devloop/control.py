"""The host side of the reload control of a dev container (packager/runtime/dev): send a patch,
read the outcome. Loopback only, every request with the run's token."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from packager.errors import DevLoopError

from .changes import Patch


@dataclass(frozen=True)
class LoadError:
    type: str
    message: str
    file: str | None
    line: int | None
    traceback: str

    @property
    def location(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass(frozen=True)
class ReloadOutcome:
    ok: bool
    generation: int
    seconds: dict[str, float]
    error: LoadError | None


class ControlUnavailable(DevLoopError):
    """The dev container's reload control did not answer (the container stopped or restarts)."""


@dataclass(frozen=True)
class Control:
    port: int
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/dev"

    def _call(self, method: str, route: str, body: dict[str, Any] | None, timeout: float) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/{route}", data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                doc = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise DevLoopError(f"the dev container refused the {route} request: HTTP {exc.code} {detail}",
                            hint="this is a bug in pack: report it with the output above") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ControlUnavailable(f"the dev container's reload control did not answer: {exc}",
                                     hint="the container may have stopped; see its output above") from None
        if not isinstance(doc, dict):
            raise ControlUnavailable(f"the reload control answered {doc!r}", hint="restart pack watch")
        return doc

    def status(self, timeout: float = 5.0) -> dict[str, Any]:
        return self._call("GET", "status", None, timeout)

    def last_error(self) -> LoadError | None:
        """Why the last load failed, while the server says it failed."""
        return _load_error(self.status().get("last_error"))

    def patch(self, patch: Patch, timeout: float = 3600.0) -> ReloadOutcome:
        """Apply the patch and reload; returns when the new model serves or failed to load."""
        files = [{"root": "app", "path": path, "content_b64": base64.b64encode(content).decode(), "mode": 0o644}
                 for path, content in sorted(patch.config.items())]
        deleted = []
        for code_file in patch.files:
            target = {"root": code_file.target.root, "path": code_file.target.path}
            if code_file.source is None:
                deleted.append(target)
                continue
            try:
                content = code_file.source.read_bytes()
                mode = code_file.source.stat().st_mode & 0o777
            except FileNotFoundError:  # deleted since the change was seen
                deleted.append(target)
                continue
            files.append({**target, "content_b64": base64.b64encode(content).decode(), "mode": mode})
        doc = self._call("POST", "patch", {"files": files, "deleted": deleted, "changed": list(patch.changed)},
                         timeout)
        return ReloadOutcome(
            ok=bool(doc.get("ok")), generation=int(doc.get("generation") or 0),
            seconds={str(k): float(v) for k, v in (doc.get("seconds") or {}).items()},
            error=_load_error(doc.get("error")),
        )


def _load_error(doc: object) -> LoadError | None:
    if not isinstance(doc, dict):
        return None
    line = doc.get("line")
    return LoadError(type=str(doc.get("type") or "Error"), message=str(doc.get("message") or ""),
                     file=doc.get("file"), line=line if isinstance(line, int) else None,
                     traceback=str(doc.get("traceback") or ""))
