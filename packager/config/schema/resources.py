"""resources: cpu, memory, accelerator and the platform-only sizing keys."""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any

import pydantic

from .base import ConfigModel, Violation


class AcceleratorType(str, enum.Enum):
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


ACCELERATOR_NAMES = ", ".join(a.value for a in AcceleratorType)


class AcceleratorSpec(ConfigModel):
    """`"H100:2"` or `{accelerator: H100, count: 2}`; serialised back to the string form."""

    accelerator: AcceleratorType | None = None
    count: int = pydantic.Field(default=1, ge=0)

    @pydantic.model_validator(mode="before")
    @classmethod
    def _parse_string(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, str):
            return value
        parts = value.strip().split(":")
        if not parts[0]:
            raise Violation(
                "accelerator type cannot be empty",
                hint=f'write e.g. accelerator: "H100" or "H100:2" (types: {ACCELERATOR_NAMES})',
            )
        if parts[0] not in AcceleratorType.__members__:
            raise Violation(
                f"unsupported accelerator type `{parts[0]}`",
                hint=f"use one of {ACCELERATOR_NAMES}, optionally with a count (`A10G:2`)",
            )
        if len(parts) > 2:
            raise Violation(
                f"invalid accelerator `{value}`", hint='use "TYPE" or "TYPE:COUNT", e.g. "H100:2"'
            )
        count = 1
        if len(parts) == 2:
            if not parts[1].isdigit() or int(parts[1]) <= 0:
                raise Violation(
                    f"invalid count '{parts[1]}': must be a positive integer",
                    hint=f'write e.g. "{parts[0]}:1"',
                )
            count = int(parts[1])
        return {"accelerator": parts[0], "count": count}

    @pydantic.model_serializer(mode="plain")
    def _to_string(self) -> str | None:
        if self.accelerator is None or self.count <= 0:
            return None
        if self.count > 1:
            return f"{self.accelerator.value}:{self.count}"
        return self.accelerator.value


def use_gpu_ignored(resources: Any) -> bool:
    """`use_gpu: true` written without an accelerator: Truss ignores it and builds a CPU image
    (a published Truss example does this), so it loads, with a warning saying so."""
    return (isinstance(resources, dict) and resources.get("use_gpu") is True
            and resources.get("accelerator") in (None, "", {}))


class FabricRequirement(ConfigModel):
    use_rdma: bool | None = None
    preferences: list[str] | None = None

    @pydantic.model_serializer(mode="wrap")
    def _omit_unset(self, handler: pydantic.SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


_MILLI_CPU = re.compile(r"^[0-9.]*m$")
_MEMORY = re.compile(r"^[0-9.]*([a-zA-Z]+)?$")
MEMORY_UNITS = {
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5, "Ei": 1024**6,
}


def _is_numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


class Resources(ConfigModel):
    cpu: str = "1"
    memory: str = "2Gi"
    accelerator: AcceleratorSpec = pydantic.Field(default_factory=AcceleratorSpec)
    instance_type: str | None = None
    node_count: Annotated[int, pydantic.Field(ge=1, strict=True)] | None = None
    fabric: FabricRequirement | None = None

    @pydantic.model_validator(mode="before")
    @classmethod
    def _drop_use_gpu(cls, data: Any) -> Any:
        # use_gpu is derived (Truss writes it into expanded configs) and dropped on input, as
        # Truss does; `true` without an accelerator is a load warning (use_gpu_ignored).
        if not isinstance(data, dict) or "use_gpu" not in data:
            return data
        data = dict(data)
        data.pop("use_gpu")
        return data

    @pydantic.field_validator("cpu")
    @classmethod
    def _cpu(cls, value: str) -> str:
        if _is_numeric(value) or _MILLI_CPU.fullmatch(value):
            return value
        raise Violation(
            f"invalid cpu specification `{value}`",
            hint='use a number of cores ("2", "0.5") or millicores ("500m")',
        )

    @pydantic.field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if _is_numeric(value):
            return value
        match = _MEMORY.fullmatch(value)
        if not match:
            raise Violation(
                f"invalid memory specification `{value}`", hint='use a number and a unit, e.g. "2Gi"'
            )
        unit = match.group(1)
        if unit not in MEMORY_UNITS:
            raise Violation(
                f"invalid memory unit `{unit}` in `{value}`",
                hint=f"use one of {', '.join(MEMORY_UNITS)} (e.g. `{value[: -len(unit)]}Gi`)",
            )
        return value

    @pydantic.computed_field(return_type=bool)  # type: ignore[prop-decorator]
    @property
    def use_gpu(self) -> bool:
        return self.accelerator.accelerator is not None

    @pydantic.model_serializer(mode="wrap")
    def _omit_unset(self, handler: pydantic.SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("node_count", "instance_type", "fabric"):
            if not data.get(key):
                data.pop(key, None)
        return data
