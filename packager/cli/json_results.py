"""The --json lines of `pack build`, `push` and `check`: a versioned contract for CI scripts.

Each command prints exactly one line of JSON on stdout, success or failure; its "schema" names
the contract ("pack.build/v1") and json_output.schema.json beside this module documents every
field (the tests validate each line against it). Within a version fields are only ever added;
removing, renaming or retyping one makes the next version. On failure the line is
{"schema": ..., "ok": false, "error": {"message", "hint", "exit_code"}} and the exit code is the
same as without --json (see EXIT_CODES).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import api
from ..errors import PackError

BUILD = "pack.build/v1"
PUSH = "pack.push/v1"
CHECK = "pack.check/v1"
SCHEMA_FILE = Path(__file__).with_name("json_output.schema.json")

# The exit codes of every command (README, "Exit codes"); tests hold each one to its meaning.
EXIT_OK = 0
EXIT_USER_ERROR = 1  # bad input or a failed build, push or check: the message says what to fix
EXIT_USAGE = 2  # the command line itself: an unknown flag, a missing argument
EXIT_INTERNAL = 70  # a bug in pack (EX_SOFTWARE)
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM
EXIT_CODES = {EXIT_OK: "ok", EXIT_USER_ERROR: "user error", EXIT_USAGE: "usage error",
              EXIT_INTERNAL: "internal fault", EXIT_INTERRUPTED: "interrupted"}


def schema_document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return loaded


def _cache(image: api.BuiltImage) -> dict[str, Any]:
    cache = image.cache
    return {"mode": cache.mode, "from": list(cache.sources), "to": cache.export_ref,
            "unavailable": [{"ref": ref, "reason": reason} for ref, reason in image.cache_unavailable]}


def build_warnings(result: api.BuildResult) -> list[str]:
    warnings = list(result.context.notes)
    for ref, reason in result.image.cache_unavailable:
        fix = (" (log in: docker login, or --username with --password-stdin)"
               if reason.startswith(("401", "403")) else "")
        warnings.append(f"--cache-from {ref} not used: {reason}{fix}")
    if result.image.retried:
        warnings.append(f"the engine failed transiently ({result.image.retried}); built again, "
                        "finished steps from its cache")
    return warnings


def build_fields(result: api.BuildResult, seconds: float) -> dict[str, Any]:
    image = result.image
    return {
        "image_id": image.id, "tag": result.tag, "size": image.size, "layers": image.layers,
        "seconds": round(seconds, 2), "builder": image.builder,
        "context_digest": f"sha256:{result.context.digest}", "weights_mode": result.plan.weights_mode,
        "built_steps": len(image.built_steps), "cached_steps": len(image.cached_steps),
        "weight_layers": result.plan.weight_layers.summary(),
        "weight_steps_run": result.weight_steps_run, "weight_bytes_fetched": result.weight_bytes_fetched,
        "cache": _cache(image), "retried": image.retried, "labels": dict(result.labels),
        "warnings": build_warnings(result),
    }


def build_line(result: api.BuildResult, seconds: float) -> str:
    return json.dumps({"schema": BUILD, "ok": True, **build_fields(result, seconds)})


def push_line(result: api.BuildResult, pushed: Any, seconds: float) -> str:
    return json.dumps({"schema": PUSH, "ok": True, **build_fields(result, seconds),
                       "image": str(pushed.reference.with_digest(None)), "digest": pushed.digest,
                       "pinned": str(pushed.pinned)})


def check_line(valid: bool, **fields: Any) -> str:
    return json.dumps({"schema": CHECK, "ok": valid, "valid": valid, **fields})


def error_line(schema: str, exc: PackError) -> str:
    return json.dumps({"schema": schema, "ok": False,
                       "error": {"message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}})


def internal_error_line(schema: str, exc: BaseException) -> str:
    return json.dumps({"schema": schema, "ok": False,
                       "error": {"message": f"internal error in pack: {type(exc).__name__}: {exc}",
                                 "hint": "a bug in pack, not in your truss; set PACK_DEBUG=1 for the traceback",
                                 "exit_code": EXIT_INTERNAL}})
