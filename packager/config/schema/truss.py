"""The top-level config.yaml model, field for field and default for default as Truss 0.18.30."""

from __future__ import annotations

from typing import Any

import pydantic

from .base import ConfigModel, Violation
from .cross import validate_with_cross_rules
from .image import BaseImage, Build, DockerServer, ExternalDataItem
from .platform import BISLLM, CheckpointList, check_trt_llm
from .resources import Resources
from .runtime import Runtime
from .weights import BDNConfig, ModelRepo, ModelRepoCacheInternal, WeightsSource

PYTHON_VERSIONS = ("py39", "py310", "py311", "py312", "py313", "py314")


class TrussConfig(ConfigModel):
    model_name: str | None = None
    model_metadata: dict[str, Any] = pydantic.Field(default_factory=dict)
    description: str | None = None
    examples_filename: str = "examples.yaml"
    data_dir: str = "data"
    external_data: list[ExternalDataItem] | None = None
    external_package_dirs: list[str] = pydantic.Field(default_factory=list)
    python_version: str = "py313"
    base_image: BaseImage | None = None
    requirements_file: str | None = None
    requirements: list[str] = pydantic.Field(default_factory=list)
    system_packages: list[str] = pydantic.Field(default_factory=list)
    environment_variables: dict[str, str] = pydantic.Field(default_factory=dict)
    secrets: dict[str, str | None] = pydantic.Field(default_factory=dict)
    resources: Resources = pydantic.Field(default_factory=Resources)
    runtime: Runtime = pydantic.Field(default_factory=Runtime)
    build: Build = pydantic.Field(default_factory=Build)
    build_commands: list[str] = pydantic.Field(default_factory=list)
    docker_server: DockerServer | None = None
    model_cache: list[ModelRepo] = pydantic.Field(default_factory=list)
    weights: list[WeightsSource] = pydantic.Field(default_factory=list)
    bdn: BDNConfig = pydantic.Field(default_factory=BDNConfig)
    trt_llm: dict[str, Any] | None = None
    training_checkpoints: CheckpointList | None = None
    bis_llm: BISLLM | None = None
    # Legacy / internal keys Truss still accepts and writes into expanded configs.
    input_type: str = "Any"
    model_framework: str = "custom"
    model_type: str = "Model"
    model_module_dir: str = "model"
    model_class_filename: str = "model.py"
    model_class_name: str = "Model"
    bundled_packages_dir: str = "packages"
    use_local_src: bool = False
    cache_internal: list[ModelRepoCacheInternal] = pydantic.Field(default_factory=list)
    live_reload: bool = False
    apply_library_patches: bool = True
    spec_version: str = "2.0"

    @pydantic.field_validator("python_version")
    @classmethod
    def _python(cls, value: str) -> str:
        if value not in PYTHON_VERSIONS:
            raise Violation(
                f"python_version `{value}` is not supported",
                hint=f"use one of {', '.join(PYTHON_VERSIONS)}",
            )
        return value

    @pydantic.field_validator("cache_internal", mode="before")
    @classmethod
    def _cache_internal_null(cls, value: Any) -> Any:
        return [] if value is None else value

    @pydantic.field_validator("trt_llm", mode="before")
    @classmethod
    def _trt_llm(cls, value: Any) -> Any:
        return check_trt_llm(value)

    @pydantic.model_validator(mode="wrap")
    @classmethod
    def _cross_field_rules(cls, data: Any, handler: pydantic.ModelWrapValidatorHandler[TrussConfig]) -> TrussConfig:
        return validate_with_cross_rules(cls, data, handler)

    # --- derived views used by later stages ----------------------------------------------

    @property
    def volume_mode(self) -> bool:
        return bool(self.model_cache) and self.model_cache[0].use_volume

    def platform_features(self) -> list[str]:
        """Keys that only Baseten's platform acts on; later stages report them."""
        found = []
        if self.bdn.mounts or self.bdn.access or self.bdn.hotload.enabled:
            found.append("bdn")
        for key in ("trt_llm", "bis_llm", "training_checkpoints"):
            if getattr(self, key) is not None:
                found.append(key)
        if self.runtime.remote_ssh.enabled:
            found.append("runtime.remote_ssh")
        if self.runtime.egress_restrictions is not None:
            found.append("runtime.egress_restrictions")
        return found
