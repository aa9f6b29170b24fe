"""Equivalents of the truss config types Chains uses (`truss.base.truss_config`).

Chain files written for Truss do `from truss.base import truss_config` (or the older
`from truss import truss_config`) and build `truss_config.ModelRepo(...)`. When pack loads a
chain file and no real `truss` package is installed, those imports resolve to this module through
the shims in `chains/_shims/truss` (see `chains.loading`). Field names and defaults follow
Truss 0.18.30; the full validation happens when pack loads the generated config.yaml.

A copy of packager/config's types, not an import of them: this module is copied into every
chainlet image (packager/chains_codegen/generate.py), where packager.config is not installed.
tests/chains/test_truss_config_shim.py keeps the two equal (fields, defaults, enum values).
"""

from __future__ import annotations

import enum
from typing import Any, Optional, Protocol, Union

import pydantic


class Accelerator(str, enum.Enum):
    B10 = "B10"
    T4 = "T4"
    L4 = "L4"
    A10G = "A10G"
    V100 = "V100"
    A100 = "A100"
    A100_40GB = "A100_40GB"
    H100 = "H100"
    H200 = "H200"
    H100_40GB = "H100_40GB"
    B200 = "B200"
    L40S = "L40S"
    RTX_PRO_6000 = "RTX_PRO_6000"
    B300 = "B300"
    GB300 = "GB300"


class ModelRepoSourceKind(str, enum.Enum):
    HF = "hf"
    GCS = "gcs"
    S3 = "s3"
    AZURE = "azure"


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", use_enum_values=True)


class ModelRepo(_Model):
    repo_id: str = pydantic.Field(min_length=1)
    revision: str = ""
    use_volume: bool
    volume_folder: Optional[str] = None
    allow_patterns: Optional[list[str]] = None
    ignore_patterns: Optional[list[str]] = None
    kind: ModelRepoSourceKind = ModelRepoSourceKind.HF
    runtime_secret_name: str = "hf_access_token"


class ExternalDataItem(_Model):
    url: str = pydantic.Field(min_length=1)
    local_data_path: str = pydantic.Field(min_length=1)
    backend: str = "http_public"
    name: Optional[str] = None
    sha256: Optional[str] = None  # pack extension: a checksum verified at build time


class WeightsAuth(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    auth_method: str  # any case, as in Truss: the config loader checks it
    auth_secret_name: Optional[str] = None
    aws_oidc_role_arn: Optional[str] = None
    aws_oidc_region: Optional[str] = None
    gcp_oidc_service_account: Optional[str] = None
    gcp_oidc_workload_id_provider: Optional[str] = None
    aws_assume_role_arn: Optional[str] = None
    aws_assume_role_region: Optional[str] = None


class WeightsSource(_Model):
    source: str = pydantic.Field(min_length=1)
    mount_location: str = pydantic.Field(min_length=1)
    auth: Optional[WeightsAuth] = None
    auth_secret_name: Optional[str] = None
    allow_patterns: Optional[list[str]] = None
    ignore_patterns: Optional[list[str]] = None


class HealthChecks(_Model):
    restart_check_delay_seconds: Optional[int] = None
    restart_threshold_seconds: Optional[int] = None
    stop_traffic_threshold_seconds: Optional[int] = None
    startup_threshold_seconds: Optional[int] = None


class DockerAuthSettings(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    auth_method: str  # any case, as in Truss: the config loader checks it
    registry: Optional[str] = ""
    secret_name: Optional[str] = None
    aws_access_key_id_secret_name: str = "aws_access_key_id"
    aws_secret_access_key_secret_name: str = "aws_secret_access_key"
    aws_oidc_role_arn: Optional[str] = None
    aws_oidc_region: Optional[str] = None
    gcp_oidc_service_account: Optional[str] = None
    gcp_oidc_workload_id_provider: Optional[str] = None
    aws_assume_role_arn: Optional[str] = None
    aws_assume_role_region: Optional[str] = None


class ConfigEntry(Protocol):
    """A config entry object: one of the models above, or a real truss package's equivalent."""

    def model_dump(self, *, mode: str = ..., exclude_none: bool = ...) -> dict[str, Any]: ...


ConfigItem = Union[ConfigEntry, dict[str, Any]]


def dump(item: ConfigItem) -> dict[str, Any]:
    """A config entry as the mapping config.yaml carries; accepts these models, a real truss
    package's equivalents (duck-typed via model_dump) and plain mappings."""
    if isinstance(item, dict):
        return dict(item)
    if hasattr(item, "model_dump"):
        data = item.model_dump(mode="json", exclude_none=True)
        return {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in data.items()}
    raise TypeError(f"expected a truss config entry, got {type(item).__name__}")


__all__ = ["Accelerator", "ConfigEntry", "ConfigItem", "DockerAuthSettings", "ExternalDataItem", "HealthChecks",
           "ModelRepo", "ModelRepoSourceKind", "WeightsAuth", "WeightsSource", "dump"]
