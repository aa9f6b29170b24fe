"""JSON schema of config.yaml for editors (`pack schema`)."""

from __future__ import annotations

from typing import Any

from .. import __version__
from .schema import TrussConfig


def config_json_schema() -> dict[str, Any]:
    schema = TrussConfig.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Truss config.yaml (pack)"
    schema["description"] = f"config.yaml accepted by pack {__version__} (Truss 0.18.30 compatible)"
    defs = schema.get("$defs", {})
    # Keys accepted on input but derived or legacy (they are not model fields).
    if "Resources" in defs:
        defs["Resources"]["properties"]["use_gpu"] = {
            "type": "boolean", "description": "derived from accelerator; accepted for round trips"}
    if "Runtime" in defs:
        defs["Runtime"]["properties"]["num_workers"] = {
            "const": 1, "description": "legacy; only 1 is accepted"}
    schema["properties"]["hf_cache"] = {
        "description": "deprecated alias of model_cache", "type": ["array", "null"]}
    return schema
