"""Rules that span several fields, checked on the raw mapping.

They run whether or not the rest of the file validates, so one load reports every problem at
once (a pydantic after-validator would be skipped as soon as any field failed).
"""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic
from pydantic_core import ErrorDetails, InitErrorDetails

from .base import Violation

Model = TypeVar("Model", bound=pydantic.BaseModel)


def _entries(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key)
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, dict)]


def cross_field_violations(data: Any) -> list[Violation]:
    if not isinstance(data, dict):
        return []
    found: list[Violation] = []
    if data.get("requirements") and data.get("requirements_file"):
        found.append(Violation(
            "only one of `requirements` and `requirements_file` may be set",
            hint="move the list into the requirements file, or drop requirements_file",
            at=("requirements_file",),
        ))
    repos = data.get("model_cache")
    if isinstance(repos, list) and repos and isinstance(data.get("weights"), list) and data["weights"]:
        found.append(Violation(
            "only one of `model_cache` and `weights` may be set",
            hint="declare every weight source in one of the two lists",
            at=("weights",),
        ))
    found += _model_cache_violations(repos if isinstance(repos, list) else [])
    found += _unique(_entries(data, "weights"), "weights", "mount_location",
                     "duplicate mount_location '{v}'", "each weights source needs its own mount path")
    runtime, server = data.get("runtime"), data.get("docker_server")
    ssh = runtime.get("remote_ssh") if isinstance(runtime, dict) else None
    if (isinstance(ssh, dict) and ssh.get("enabled") is True and isinstance(server, dict)
            and server.get("run_as_user_id") is not None):
        found.append(Violation(
            "runtime.remote_ssh.enabled is not compatible with docker_server.run_as_user_id "
            "(SSH requires the default 'app' user, uid 60000)",
            hint="remove docker_server.run_as_user_id or disable remote_ssh",
            at=("docker_server", "run_as_user_id"),
        ))
    return found


def _model_cache_violations(repos: list[Any]) -> list[Violation]:
    flags = [(i, r["use_volume"]) for i, r in enumerate(repos)
             if isinstance(r, dict) and isinstance(r.get("use_volume"), bool)]
    found: list[Violation] = []
    odd = [(i, flag) for i, flag in flags if flag != flags[0][1]] if flags else []
    if odd:
        first_index, first_flag = flags[0]
        i, flag = odd[0]
        found.append(Violation(
            "all model_cache entries must use the same use_volume value "
            f"(model_cache[{first_index}] has {str(first_flag).lower()}, "
            f"model_cache[{i}] has {str(flag).lower()})",
            hint="use either runtime volumes (true) or baked weights (false) for every entry",
            at=("model_cache", i, "use_volume"),
        ))
    found += _unique([r if isinstance(r, dict) else {} for r in repos], "model_cache", "volume_folder",
                     "volume_folder `{v}` is already used by model_cache[{first}]",
                     "give every entry its own volume_folder")
    return found


def _unique(items: list[dict[str, Any]], section: str, key: str, message: str, hint: str) -> list[Violation]:
    seen: dict[Any, int] = {}
    found = []
    for i, item in enumerate(items):
        value = item.get(key)
        if value is None or not isinstance(value, str):
            continue
        if value in seen:
            found.append(Violation(message.format(v=value, first=seen[value]), hint=hint,
                                   at=(section, i, key)))
        seen.setdefault(value, i)
    return found


def as_line_errors(violations: list[Violation], data: Any) -> list[InitErrorDetails]:
    return [
        {"type": "value_error", "loc": tuple(v.at), "input": data, "ctx": {"error": Violation(v.message, v.hint)}}
        for v in violations
    ]


def _reraised(error: ErrorDetails) -> InitErrorDetails:
    """A reported error as from_exception_data takes it back (type, loc, input, ctx)."""
    init: InitErrorDetails = {"type": error["type"], "loc": error["loc"], "input": error["input"]}
    if "ctx" in error:
        init["ctx"] = error["ctx"]
    return init


def validate_with_cross_rules(
    cls: type[Model], data: Any, handler: pydantic.ModelWrapValidatorHandler[Model]
) -> Model:
    """Body of TrussConfig's wrap validator: field errors and cross-field errors together."""
    cross = cross_field_violations(data)
    try:
        result = handler(data)
    except pydantic.ValidationError as exc:
        if not cross:
            raise
        raise pydantic.ValidationError.from_exception_data(
            exc.title, [_reraised(e) for e in exc.errors()] + as_line_errors(cross, data)
        ) from None
    if cross:
        raise pydantic.ValidationError.from_exception_data(cls.__name__, as_line_errors(cross, data))
    return result
