"""Platform-only sections (Baseten features pack cannot build locally).

They must load so published configs keep working: validated as far as their shape is
documented, otherwise kept as opaque mappings. Later stages refuse to build what would change
the image (trt_llm, bis_llm) with an UnsupportedError instead of dropping the key silently.
"""

from __future__ import annotations

from typing import Any

import pydantic

from .base import ConfigModel, Violation


class TrainingArtifactReference(ConfigModel):
    training_job_id: str
    paths: list[str] = pydantic.Field(default_factory=list)


class CheckpointList(ConfigModel):
    download_folder: str = "/tmp/training_checkpoints"
    artifact_references: list[TrainingArtifactReference] = pydantic.Field(default_factory=list)
    loops_checkpoint_ids: list[str] = pydantic.Field(default_factory=list)

    @pydantic.model_validator(mode="after")
    def _no_mixing(self) -> CheckpointList:
        if self.artifact_references and self.loops_checkpoint_ids:
            raise Violation(
                "cannot mix artifact_references and loops_checkpoint_ids in one deploy",
                hint="keep only one of them",
                at=("loops_checkpoint_ids",),
            )
        return self


class AutoscalingMetric(pydantic.BaseModel):
    name: str
    target: float


class AdditionalAutoscalingConfig(pydantic.BaseModel):
    metrics: list[AutoscalingMetric]


class BISLLM(ConfigModel):
    config: dict[str, Any] | None = None
    version: str = ""
    additional_autoscaling_config: AdditionalAutoscalingConfig | None = None


def check_trt_llm(value: Any) -> Any:
    """trt_llm: a large, fast-moving Baseten schema. Check the documented outline only."""
    if value is None:
        return value
    if not isinstance(value, dict):
        raise Violation("trt_llm must be a mapping", hint="see the TensorRT-LLM engine builder docs")
    stack = value.get("inference_stack", "v1")
    if stack not in ("v1", "v2"):
        raise Violation(
            f"unknown inference_stack `{stack}`", hint="use v1 or v2", at=("inference_stack",)
        )
    build = value.get("build")
    if build is None and stack == "v1":
        raise Violation(
            "trt_llm.build is required for the v1 inference stack",
            hint="add a build section with base_model and checkpoint_repository",
            at=("build",),
        )
    for section in ("build", "runtime"):
        if section in value and value[section] is not None and not isinstance(value[section], dict):
            raise Violation(f"trt_llm.{section} must be a mapping", hint=f"write {section}: as a mapping of keys",
                            at=(section,))
    return value
