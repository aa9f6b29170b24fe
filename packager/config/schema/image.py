"""How the image is made: base_image, docker_server, build, external_data."""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any

import pydantic

from .base import ConfigModel, Violation
from .weights import AuthFields, check_auth_fields

NonEmpty = Annotated[str, pydantic.StringConstraints(min_length=1)]
DEFAULT_NON_ROOT_USER_ID = 60000


class DockerAuthType(str, enum.Enum):
    GCP_SERVICE_ACCOUNT_JSON = "GCP_SERVICE_ACCOUNT_JSON"
    AWS_IAM = "AWS_IAM"
    AWS_OIDC = "AWS_OIDC"
    GCP_OIDC = "GCP_OIDC"
    REGISTRY_SECRET = "REGISTRY_SECRET"
    AWS_ASSUME_ROLE = "AWS_ASSUME_ROLE"


_DOCKER_AUTH_REQUIRED = {
    "GCP_SERVICE_ACCOUNT_JSON": ("secret_name",),
    "AWS_OIDC": ("aws_oidc_role_arn", "aws_oidc_region"),
    "GCP_OIDC": ("gcp_oidc_service_account", "gcp_oidc_workload_id_provider"),
    "AWS_ASSUME_ROLE": ("aws_assume_role_arn", "aws_assume_role_region"),
}


class DockerAuthSettings(AuthFields):
    auth_method: DockerAuthType
    registry: str | None = ""
    secret_name: str | None = None
    aws_access_key_id_secret_name: str = "aws_access_key_id"
    aws_secret_access_key_secret_name: str = "aws_secret_access_key"

    @pydantic.model_validator(mode="after")
    def _fields(self) -> DockerAuthSettings:
        method = self.auth_method.value
        if method in _DOCKER_AUTH_REQUIRED:
            # secret_name plays the role auth_secret_name plays for weights.
            required = _DOCKER_AUTH_REQUIRED[method]
            check_auth_fields(self, method, required, ())
            if method != "GCP_SERVICE_ACCOUNT_JSON" and self.secret_name:
                raise Violation(
                    f"secret_name cannot be specified when auth_method is {method}",
                    hint="remove secret_name",
                    at=("secret_name",),
                )
        return self


class BaseImage(ConfigModel):
    image: str = ""
    python_executable_path: str = ""
    docker_auth: DockerAuthSettings | None = None

    @pydantic.field_validator("python_executable_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if value and not value.startswith("/"):
            raise Violation(
                f"invalid relative python executable path `{value}`",
                hint="give an absolute path, e.g. /usr/bin/python3",
            )
        return value


class DockerServer(ConfigModel):
    start_command: str | None = None
    server_port: int
    predict_endpoint: str
    readiness_endpoint: str
    liveness_endpoint: str
    run_as_user_id: int | None = None
    no_build: bool | None = None

    @pydantic.field_validator("run_as_user_id")
    @classmethod
    def _uid(cls, value: int | None) -> int | None:
        if value in (0, DEFAULT_NON_ROOT_USER_ID):
            raise Violation(
                f"run_as_user_id cannot be {value}",
                hint="use another user id (e.g. 1000), or remove run_as_user_id",
            )
        return value

    @pydantic.model_validator(mode="after")
    def _start_command(self) -> DockerServer:
        if not self.no_build and self.start_command is None:
            raise Violation(
                "start_command is required when no_build is not true",
                hint='add start_command: "<command that starts your server>"',
                at=("start_command",),
            )
        return self


class ModelServer(str, enum.Enum):
    TrussServer = "TrussServer"
    TRT_LLM = "TRT_LLM"


_SECRET_NAME = re.compile(r"^[-._a-zA-Z0-9]+$")


def check_secret_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise Violation(f"invalid secret name `{name}`", hint="use a non-empty name")
    if len(name) > 253:
        raise Violation(f"secret name `{name}` must be shorter than 253 characters", hint="use a shorter name")
    if name in (".", ".."):
        raise Violation(f"secret name cannot be `{name}`", hint="use a real name")
    if not _SECRET_NAME.match(name) and not name.startswith("DOCKER_REGISTRY_"):
        raise Violation(
            f"secret name `{name}` does not follow Kubernetes object naming",
            hint="use letters, digits, '-', '_' and '.' only",
        )


class Build(ConfigModel):
    model_server: ModelServer = ModelServer.TrussServer
    arguments: dict[str, Any] = pydantic.Field(default_factory=dict)
    secret_to_path_mapping: dict[str, str] = pydantic.Field(default_factory=dict)
    no_cache: bool = False

    @pydantic.field_validator("secret_to_path_mapping")
    @classmethod
    def _names(cls, mapping: dict[str, str]) -> dict[str, str]:
        for name, path in mapping.items():
            try:
                check_secret_name(name)
            except Violation as exc:
                exc.at = (name,)
                raise
            if not path.startswith("/"):
                raise Violation(
                    f"secret `{name}` must be mounted at an absolute path, got `{path}`",
                    hint=f"use e.g. /run/secrets/{name}",
                    at=(name,),
                )
        return mapping

    @pydantic.field_validator("model_server")
    @classmethod
    def _buildable_server(cls, value: ModelServer) -> ModelServer:
        # Truss accepts TRT_LLM here only to route the truss to Baseten's TensorRT-LLM engine
        # builder (and to force a published deployment); nothing local can build it.
        if value is ModelServer.TRT_LLM:
            raise Violation(
                "model_server `TRT_LLM` is served by Baseten's TensorRT-LLM engine builder; pack "
                "builds only the TrussServer model server (model/model.py)",
                hint="remove build.model_server (TrussServer is the default) to build model/model.py with "
                     "pack, or deploy this truss with `truss push`",
            )
        return value

    @pydantic.field_validator("no_cache")
    @classmethod
    def _no_cache(cls, value: bool) -> bool:
        if value:
            raise Violation(
                "no_cache cannot be specified in config.yaml",
                hint="remove it and use the --no-cache flag of `pack build` instead",
            )
        return value


class ExternalDataItem(ConfigModel):
    url: NonEmpty
    local_data_path: NonEmpty
    backend: str = "http_public"
    name: str | None = None
    sha256: str | None = None  # pack extension: a checksum verified at build time

    @pydantic.field_validator("sha256")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-f]{64}", value):
            raise Violation("sha256 must be 64 lower-case hex characters", hint="use `sha256sum FILE`")
        return value

    @pydantic.model_serializer(mode="wrap")
    def _omit_checksum(self, handler: pydantic.SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("sha256") is None:
            data.pop("sha256", None)
        return data

    @pydantic.field_validator("local_data_path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise Violation(
                f"local_data_path `{value}` must stay inside the data directory",
                hint="use a relative path such as weights/model.bin",
            )
        return value
