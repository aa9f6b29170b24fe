"""chains.truss_config (and the transport options of chains.public_types) is a copy of config
types that packager/config/schema declares too: it is copied into chainlet images, where
packager.config is not installed. These tests keep the copies equal to the config's own types:
the same fields, the same required ones, the same defaults and the same enum values; and what
the shim writes into a generated config.yaml is what the config loads back unchanged."""

from __future__ import annotations

import enum
import inspect
from typing import Any

import pydantic
import pytest

from chains import public_types
from chains import truss_config as shim
from packager.config.schema import image, resources, runtime, weights

MODELS: list[tuple[type[pydantic.BaseModel], type[pydantic.BaseModel]]] = [
    (shim.ModelRepo, weights.ModelRepo),
    (shim.ExternalDataItem, image.ExternalDataItem),
    (shim.WeightsAuth, weights.WeightsAuth),
    (shim.WeightsSource, weights.WeightsSource),
    (shim.HealthChecks, runtime.HealthChecks),
    (shim.DockerAuthSettings, image.DockerAuthSettings),
    (public_types.HTTPOptions, runtime.HTTPOptions),
    (public_types.WebsocketOptions, runtime.WebsocketOptions),
    (public_types.GRPCOptions, runtime.GRPCOptions),
]
ENUMS: list[tuple[type[enum.Enum], type[enum.Enum]]] = [
    (shim.Accelerator, resources.AcceleratorType),
    (shim.ModelRepoSourceKind, weights.RepoKind),
]


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _fields(model: type[pydantic.BaseModel]) -> dict[str, tuple[bool, Any]]:
    """name -> (required, default), enum defaults as their values."""
    return {name: (True, None) if info.is_required() else (False, _plain(info.get_default(call_default_factory=True)))
            for name, info in model.model_fields.items()}


@pytest.mark.parametrize(("copy", "config"), MODELS, ids=[m[0].__name__ for m in MODELS])
def test_the_copy_has_the_config_types_fields_and_defaults(copy, config):
    assert _fields(copy) == _fields(config)


@pytest.mark.parametrize(("copy", "config"), ENUMS, ids=[e[0].__name__ for e in ENUMS])
def test_the_copy_has_the_config_enums_values(copy, config):
    assert [m.value for m in copy] == [m.value for m in config]


def test_every_config_type_of_the_shim_is_compared():
    compared = {c.__name__ for c, _ in MODELS} | {c.__name__ for c, _ in ENUMS}
    declared = {name for name, value in vars(shim).items()
                if inspect.isclass(value) and issubclass(value, (pydantic.BaseModel, enum.Enum))
                and value.__module__ == shim.__name__ and not name.startswith("_")}
    assert {"Accelerator", "ModelRepo", "WeightsSource"} <= declared
    assert declared == declared & compared, f"not compared with packager/config: {declared - compared}"


def test_a_field_added_on_one_side_only_is_caught():
    class Drifted(shim.HealthChecks):
        liveness_seconds: int = 5

    assert _fields(Drifted) != _fields(runtime.HealthChecks)
    assert _fields(shim.ModelRepo) != _fields(weights.ModelRepoCacheInternal)  # a changed default


# What chain files write: the shim's entries, as generate.py dumps them into config.yaml.
ENTRIES: list[tuple[pydantic.BaseModel, type[pydantic.BaseModel]]] = [
    (shim.ModelRepo(repo_id="gs://bucket/llama", revision="main", use_volume=True, volume_folder="llama",
                    allow_patterns=["*.json"], ignore_patterns=["*.bin"], kind=shim.ModelRepoSourceKind.GCS,
                    runtime_secret_name="gcs_key"), weights.ModelRepo),
    (shim.ExternalDataItem(url="https://host/x.bin", local_data_path="x.bin", backend="http_public",
                           name="x", sha256="0" * 64), image.ExternalDataItem),
    (shim.WeightsSource(source="s3://bucket/w", mount_location="/models/w",
                        auth=shim.WeightsAuth(auth_method="aws_oidc", aws_oidc_role_arn="arn:aws:iam::1:role/r",
                                              aws_oidc_region="us-east-1"),
                        allow_patterns=["*.safetensors"]), weights.WeightsSource),
    (shim.HealthChecks(restart_check_delay_seconds=1, restart_threshold_seconds=2,
                       stop_traffic_threshold_seconds=3, startup_threshold_seconds=4), runtime.HealthChecks),
    (shim.DockerAuthSettings(auth_method="GCP_SERVICE_ACCOUNT_JSON", registry="us-docker.pkg.dev",
                             secret_name="gcp_sa"), image.DockerAuthSettings),
]


@pytest.mark.parametrize(("entry", "config"), ENTRIES, ids=[type(e[0]).__name__ for e in ENTRIES])
def test_what_the_shim_writes_the_config_loads_unchanged(entry, config):
    written = shim.dump(entry)
    loaded = config.model_validate(written).model_dump(mode="json", exclude_none=True)
    if config is weights.WeightsSource:  # auth_method is written as given, any case (as in Truss)
        written["auth"]["auth_method"] = written["auth"]["auth_method"].upper()
    assert loaded == written
