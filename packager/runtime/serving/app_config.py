"""Reading the image's expanded config and the few settings the runtime takes from it.

The renderer writes /app/config.yaml (for users and Truss tools) and the same document as JSON at
/app/.pack/config.json. The runtime reads only the JSON: it needs no YAML parser, which matters
in docker_server images where nothing but the user's base image is installed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..image_paths import RuntimePaths


class ConfigUnavailable(RuntimeError):
    """Neither config document can be read."""


def load_config(paths: RuntimePaths) -> dict[str, Any]:
    """The expanded config (a JSON object of user-defined depth: Model(config=...) gets it whole)."""
    try:
        with open(paths.config_json, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        hint = (f" ({paths.config_yaml} exists, but the runtime reads only the JSON copy the "
                f"renderer writes beside it: re-render the image with this pack version)"
                if os.path.isfile(paths.config_yaml) else "")
        raise ConfigUnavailable(f"{paths.config_json} is missing{hint}") from None
    except ValueError as exc:
        raise ConfigUnavailable(f"{paths.config_json} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigUnavailable(f"{paths.config_json} holds a {type(doc).__name__}, not a mapping")
    return doc


def _section(config: dict[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class ServingSettings:
    """The config fields the runtime acts on, with Truss's defaults for absent keys."""

    model_module_dir: str = "model"
    model_class_filename: str = "model.py"
    model_class_name: str = "Model"
    predict_concurrency: int = 1
    streaming_read_timeout: float = 60.0
    debug_logs: bool = False
    enable_tracing: bool = False  # runtime.enable_tracing_data: OpenTelemetry spans (tracing.py)
    secret_names: tuple[str, ...] = ()
    environment_variables: dict[str, str] = field(default_factory=dict)
    docker_server: dict[str, Any] | None = None
    # `weights:` sources are mounted before the model starts on the platform, so a Truss model
    # reads them in load() without waiting: the server waits for them before calling load().
    weights_before_load: bool = False

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ServingSettings:
        runtime = _section(config, "runtime")
        secrets = config.get("secrets") or {}
        env = config.get("environment_variables") or {}
        docker = config.get("docker_server")
        return cls(
            model_module_dir=str(config.get("model_module_dir") or "model"),
            model_class_filename=str(config.get("model_class_filename") or "model.py"),
            model_class_name=str(config.get("model_class_name") or "Model"),
            predict_concurrency=max(1, int(runtime.get("predict_concurrency") or 1)),
            streaming_read_timeout=float(runtime.get("streaming_read_timeout") or 60),
            debug_logs=bool(runtime.get("enable_debug_logs")),
            enable_tracing=bool(runtime.get("enable_tracing_data")),
            secret_names=tuple(str(k) for k in secrets) if isinstance(secrets, dict) else (),
            environment_variables={str(k): _env_text(v) for k, v in env.items()}
            if isinstance(env, dict) else {},
            docker_server=docker if isinstance(docker, dict) else None,
            weights_before_load=bool(config.get("weights")),
        )


def _env_text(value: Any) -> str:
    # str() like Truss's Dockerfile template (`true` in YAML becomes "True").
    return "" if value is None else str(value)
