"""The configuration types of the Chains API: RemoteConfig and its parts, RPC options and the
deployment context a chainlet receives (chains-compat §4)."""

from __future__ import annotations

import enum
import inspect
import os
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Optional, Protocol, Union

import pydantic

from packager.constants import SECRET_PLACEHOLDER
from packager.runtime.secret_lookup import is_unset

from . import truss_config
from .errors import ChainsUsageError, MissingDependencyError

DISPLAY_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
BASETEN_API_SECRET_NAME = "baseten_chain_api_key"


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(arbitrary_types_allowed=True, extra="forbid")


# --- paths ------------------------------------------------------------------------------------
class AbsPath:
    """A path resolved against the file that created it (make_abs_path_here)."""

    def __init__(self, abs_file_path: str, creating_module: str, original_path: str):
        self._abs_file_path = abs_file_path
        self._creating_module = creating_module
        self._original_path = original_path

    @property
    def abs_path(self) -> str:
        if not os.path.exists(self._abs_file_path):
            raise MissingDependencyError(
                f"`{self._original_path}` (resolved to `{self._abs_file_path}`, relative to "
                f"{self._creating_module}) does not exist")
        return self._abs_file_path

    def __fspath__(self) -> str:
        return self.abs_path

    def __repr__(self) -> str:
        return f"AbsPath({self._abs_file_path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AbsPath) and other._abs_file_path == self._abs_file_path

    def __hash__(self) -> int:
        return hash(self._abs_file_path)


def make_abs_path_here(file_path: str) -> AbsPath:
    """`file_path` relative to the directory of the file that calls this function."""
    frame = inspect.stack()[1]
    caller = os.path.abspath(frame.filename)
    del frame
    if os.path.isabs(file_path):
        target = file_path
    else:
        target = os.path.normpath(os.path.join(os.path.dirname(caller), file_path))
    return AbsPath(target, caller, file_path)


# --- images -----------------------------------------------------------------------------------
class BasetenImage(enum.Enum):
    PY39 = "py39"
    PY310 = "py310"
    PY311 = "py311"


class CustomImage(_Model):
    image: str = "python:3.11-slim"
    python_executable_path: Optional[str] = None
    docker_auth: Optional[truss_config.DockerAuthSettings] = None


class DockerImage(_Model):
    base_image: Union[BasetenImage, CustomImage] = BasetenImage.PY311
    pip_requirements: list[str] = pydantic.Field(default_factory=list)
    requirements_file: Optional[AbsPath] = None
    pip_requirements_file: Optional[AbsPath] = None  # deprecated alias of requirements_file
    apt_requirements: list[str] = pydantic.Field(default_factory=list)
    data_dir: Optional[AbsPath] = None
    external_package_dirs: Optional[list[AbsPath]] = None
    truss_server_version_override: Optional[str] = None

    @pydantic.field_validator("base_image", mode="before")
    @classmethod
    def _no_str_image(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ChainsUsageError(
                f"`DockerImage.base_image` must be a `BasetenImage` or a `CustomImage`, got the "
                f"string {value!r}: use `chains.CustomImage(image={value!r})`")
        return value

    @pydantic.model_validator(mode="after")
    def _one_requirements_file(self) -> DockerImage:
        if self.requirements_file is not None and self.pip_requirements_file is not None:
            raise ChainsUsageError("set only one of `requirements_file` and the deprecated "
                                   "`pip_requirements_file`")
        if self.pip_requirements_file is not None:
            self.requirements_file, self.pip_requirements_file = self.pip_requirements_file, None
        if self.requirements_file is not None and self.pip_requirements:
            name = os.path.basename(self.requirements_file._abs_file_path)
            if name in ("pyproject.toml", "uv.lock"):
                raise ChainsUsageError(f"`pip_requirements` cannot be combined with a {name} "
                                       "requirements file: add them to that file")
        return self


# --- compute and assets ----------------------------------------------------------------------
class ComputeSpec(_Model):
    cpu_count: int = 1
    predict_concurrency: int = 1
    memory: str = "2Gi"
    accelerator: Optional[str] = None
    accelerator_count: int = 1
    instance_type: Optional[str] = None

    def accelerator_text(self) -> Optional[str]:
        if self.accelerator is None:
            return None
        return self.accelerator if self.accelerator_count == 1 else f"{self.accelerator}:{self.accelerator_count}"


class Compute:
    """Compute resources of a chainlet (builder: `Compute(cpu_count=2, gpu="L4")`)."""

    def __init__(self, cpu_count: int = 1, memory: str = "2Gi",
                 gpu: Union[str, truss_config.Accelerator, None] = None, gpu_count: int = 1,
                 predict_concurrency: Union[int, Literal["cpu_count"]] = 1,
                 instance_type: Optional[str] = None) -> None:
        accelerator = None
        if gpu is not None:
            value = gpu.value if isinstance(gpu, truss_config.Accelerator) else str(gpu)
            try:
                accelerator = truss_config.Accelerator(value).value
            except ValueError:
                raise ChainsUsageError(
                    f"unsupported gpu {gpu!r}; use one of "
                    f"{', '.join(a.value for a in truss_config.Accelerator)}") from None
        concurrency = cpu_count if predict_concurrency == "cpu_count" else predict_concurrency
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ChainsUsageError(f"predict_concurrency must be a positive int or 'cpu_count', got "
                                   f"{predict_concurrency!r}")
        self._spec = ComputeSpec(cpu_count=cpu_count, predict_concurrency=concurrency, memory=memory,
                                 accelerator=accelerator, accelerator_count=gpu_count,
                                 instance_type=instance_type)

    def get_spec(self) -> ComputeSpec:
        return self._spec.model_copy(deep=True)


# Entries are checked by Assets and written by truss_config.dump: a real truss's models pass too.
_ConfigItems = pydantic.SkipValidation[list[truss_config.ConfigItem]]


class AssetSpec(_Model):
    secrets: dict[str, str] = pydantic.Field(default_factory=dict)
    cached: _ConfigItems = pydantic.Field(default_factory=list)
    external_data: _ConfigItems = pydantic.Field(default_factory=list)
    weights: _ConfigItems = pydantic.Field(default_factory=list)


class Assets:
    """Cached model repos, secret names, external data and weights of a chainlet."""

    def __init__(self, cached: Iterable[truss_config.ConfigItem] = (), secret_keys: Iterable[str] = (),
                 external_data: Iterable[truss_config.ConfigItem] = (),
                 weights: Iterable[truss_config.ConfigItem] = ()) -> None:
        entries = {"cached": list(cached), "external_data": list(external_data), "weights": list(weights)}
        for label, items in entries.items():
            for item in items:
                if not (isinstance(item, dict) or hasattr(item, "model_dump")):
                    raise ChainsUsageError(f"Assets({label}=...) takes truss_config entries "
                                           f"(e.g. truss_config.ModelRepo), got {type(item).__name__}")
        self._spec = AssetSpec(secrets={str(k): SECRET_PLACEHOLDER for k in secret_keys},
                               cached=entries["cached"], external_data=entries["external_data"],
                               weights=entries["weights"])

    def get_spec(self) -> AssetSpec:
        return self._spec.model_copy()


# --- options ------------------------------------------------------------------------------------
class HTTPOptions(_Model):
    kind: Literal["http"] = "http"


class WebsocketOptions(_Model):
    kind: Literal["websocket"] = "websocket"
    ping_interval_seconds: Optional[float] = None
    ping_timeout_seconds: Optional[float] = None


class GRPCOptions(_Model):
    kind: Literal["grpc"] = "grpc"


class ChainletOptions(_Model):
    enable_b10_tracing: bool = False
    enable_debug_logs: bool = False
    env_variables: Mapping[str, str] = pydantic.Field(default_factory=dict)
    health_checks: truss_config.HealthChecks = pydantic.Field(default_factory=truss_config.HealthChecks)
    metadata: Optional[dict[str, Any]] = None
    streaming_read_timeout: int = 60
    transport: Optional[Union[HTTPOptions, WebsocketOptions, GRPCOptions]] = None


class RemoteConfig(_Model):
    docker_image: DockerImage = pydantic.Field(default_factory=DockerImage)
    compute: Compute = pydantic.Field(default_factory=Compute)
    assets: Assets = pydantic.Field(default_factory=Assets)
    name: Optional[str] = None
    options: ChainletOptions = pydantic.Field(default_factory=ChainletOptions)
    build_commands: list[str] = pydantic.Field(default_factory=list)

    def get_compute_spec(self) -> ComputeSpec:
        return self.compute.get_spec()

    def get_asset_spec(self) -> AssetSpec:
        return self.assets.get_spec()


class RPCOptions(_Model):
    """How a chainlet calls one dependency.

    `retries` counts retries after the first attempt (Truss counts attempts): retries=3 means up
    to 4 calls, and only transport failures and 429/502/503/504 answers are retried, never a
    response carrying a remote error.
    """

    retries: int = pydantic.Field(default=1, ge=0)
    timeout_sec: float = pydantic.Field(default=600.0, gt=0)
    use_binary: bool = False
    concurrency_limit: int = pydantic.Field(default=300, ge=1)


# --- deployment context ---------------------------------------------------------------------------
class InternalURL(_Model):
    gateway_run_remote_url: str
    hostname: str


class DeployedServiceDescriptor(_Model):
    name: str
    display_name: str
    options: RPCOptions
    predict_url: Optional[str] = None
    internal_url: Optional[InternalURL] = None

    @pydantic.model_validator(mode="after")
    def _one_url(self) -> DeployedServiceDescriptor:
        if self.predict_url is None and self.internal_url is None:
            raise ValueError("At least one of 'predict_url' or 'internal_url' must be provided.")
        return self


class Environment(_Model):
    model_config = pydantic.ConfigDict(extra="allow")
    name: str


class DeploymentContext(pydantic.BaseModel):
    """What a chainlet's `context` parameter receives."""

    model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)

    chainlet_to_service: Mapping[str, DeployedServiceDescriptor] = pydantic.Field(default_factory=dict)
    # The runtime's mapping is lookup-only (iterating raises), so it is not validated.
    secrets: pydantic.SkipValidation[Mapping[str, str]] = pydantic.Field(default_factory=dict)
    data_dir: Optional[Path] = None
    environment: Optional[Environment] = None

    def get_service_descriptor(self, chainlet_name: str) -> DeployedServiceDescriptor:
        if chainlet_name not in self.chainlet_to_service:
            raise MissingDependencyError(f"no service descriptor for chainlet `{chainlet_name}`")
        return self.chainlet_to_service[chainlet_name]

    def get_baseten_api_key(self) -> str:
        try:
            value = self.secrets[BASETEN_API_SECRET_NAME]
        except KeyError:
            value = None
        if value is None or is_unset(value):
            raise MissingDependencyError(
                f"secret `{BASETEN_API_SECRET_NAME}` is not set (needed to call other chainlets "
                "and deployed models)")
        return value.strip()


ClassVarRemoteConfig = ClassVar[RemoteConfig]


# --- interfaces ---------------------------------------------------------------------------------
class WebSocketProtocol(Protocol):
    """The subset of starlette's (fastapi's) WebSocket a websocket chainlet's `run_remote` receives
    (truss_chains 0.18.30). The connection is accepted before run_remote runs; when run_remote
    returns it is closed (1000), when it raises it is closed with 1011. `receive` raises
    WebSocketDisconnect when the client has gone (fastapi's when fastapi is installed).
    As in truss_chains, `iter_*` and `is_connected` are coroutines: `async for m in await ws.iter_text()`."""

    headers: Mapping[str, str]

    async def close(self, code: int = 1000, reason: Optional[str] = None) -> None: ...

    async def receive(self) -> Union[str, bytes]: ...
    async def receive_text(self) -> str: ...
    async def receive_bytes(self) -> bytes: ...
    async def receive_json(self) -> Any: ...

    async def send_text(self, data: str) -> None: ...
    async def send_bytes(self, data: bytes) -> None: ...
    async def send_json(self, data: Any) -> None: ...

    async def iter_text(self) -> AsyncIterator[str]: ...
    async def iter_bytes(self) -> AsyncIterator[bytes]: ...
    async def iter_json(self) -> AsyncIterator[Any]: ...

    def is_connected(self) -> bool: ...
