"""runtime: serving settings (concurrency, transport, health checks, platform-only keys)."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

import pydantic
from packaging.version import InvalidVersion, Version

from .base import ConfigModel, Violation


class HealthChecks(ConfigModel):
    restart_check_delay_seconds: int | None = None
    restart_threshold_seconds: int | None = None
    stop_traffic_threshold_seconds: int | None = None
    startup_threshold_seconds: int | None = None


class HTTPOptions(ConfigModel):
    kind: Literal["http"] = "http"


class WebsocketOptions(ConfigModel):
    kind: Literal["websocket"] = "websocket"
    ping_interval_seconds: float | None = None
    ping_timeout_seconds: float | None = None


class GRPCOptions(ConfigModel):
    kind: Literal["grpc"] = "grpc"


Transport = Annotated[
    HTTPOptions | WebsocketOptions | GRPCOptions, pydantic.Field(discriminator="kind")
]


class OIDC(ConfigModel):
    enabled: bool | None = None


class RemoteSSH(ConfigModel):
    enabled: bool = False


_FQDN = re.compile(
    r"^(?:[a-zA-Z0-9*](?:[a-zA-Z0-9*-]{0,61}[a-zA-Z0-9*])?)"
    r"(?:\.(?:[a-zA-Z0-9*](?:[a-zA-Z0-9*-]{0,61}[a-zA-Z0-9*])?))*$"
)


class EgressRestrictions(ConfigModel):
    ip_allow_list: list[str] | None = None
    fqdn_allow_list: list[str] | None = None

    @pydantic.field_validator("ip_allow_list")
    @classmethod
    def _ips(cls, value: list[str] | None) -> list[str] | None:
        for i, entry in enumerate(value or []):
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise Violation(f"invalid IP or CIDR '{entry}': {exc}",
                                hint="use IPv4 addresses or ranges such as 1.2.3.0/24", at=(i,)) from None
            if network.version != 4:
                raise Violation(f"invalid IP or CIDR '{entry}': IPv6 is not supported",
                                hint="use IPv4 addresses or ranges such as 1.2.3.0/24", at=(i,))
        return value

    @pydantic.field_validator("fqdn_allow_list")
    @classmethod
    def _fqdns(cls, value: list[str] | None) -> list[str] | None:
        for i, entry in enumerate(value or []):
            if not entry or not _FQDN.match(entry):
                raise Violation(
                    f"invalid FQDN '{entry}'", hint="use host names such as *.example.com", at=(i,)
                )
        return value


class Runtime(ConfigModel):
    predict_concurrency: int = 1
    streaming_read_timeout: int = 60
    enable_tracing_data: bool = False
    enable_debug_logs: bool = False
    transport: Transport = pydantic.Field(default_factory=HTTPOptions)
    is_websocket_endpoint: bool | None = None
    health_checks: HealthChecks = pydantic.Field(default_factory=HealthChecks)
    oidc: OIDC = pydantic.Field(default_factory=OIDC)
    remote_ssh: RemoteSSH = pydantic.Field(default_factory=RemoteSSH)
    egress_restrictions: EgressRestrictions | None = None
    truss_server_version_override: str | None = None

    @pydantic.model_validator(mode="before")
    @classmethod
    def _legacy_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "num_workers" in data:
            # Legacy key Truss still writes as 1 in old expanded configs.
            if data.pop("num_workers") != 1:
                raise Violation(
                    "only 1 worker per server is allowed (since truss 0.9.49)",
                    hint="remove num_workers; use predict_concurrency, async code or replicas",
                    at=("num_workers",),
                )
        if data.get("transport") is None and data.get("is_websocket_endpoint"):
            data["transport"] = {"kind": "websocket"}
        if data.get("transport") == {}:
            data["transport"] = {"kind": "http"}
        return data

    @pydantic.field_validator("truss_server_version_override")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            Version(value)
        except InvalidVersion:
            raise Violation(
                f"invalid version string `{value}`", hint="use a version such as '0.9.0'"
            ) from None
        return value

    @pydantic.model_validator(mode="after")
    def _sync_websocket(self) -> Runtime:
        if self.is_websocket_endpoint and self.transport.kind != "websocket":
            object.__setattr__(self, "transport", WebsocketOptions())
        object.__setattr__(self, "is_websocket_endpoint", self.transport.kind == "websocket")
        return self
