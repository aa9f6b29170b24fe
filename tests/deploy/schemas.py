"""Offline schema checks of rendered manifests; a resource no schema is found for fails.

    core (apps/v1, v1, autoscaling/v2)   kubernetes-validate, strict (unknown fields fail), K8S_VERSION
    serving.knative.dev/v1 Service       cloudcoil-models-knative-serving (models generated from Knative's
                                         CRDs): validated, then dumped again; anything the models dropped or
                                         coerced (an unknown key, "1" for 1) fails. The revision's pod spec,
                                         which the CRD leaves open where Knative's feature flags are, is also
                                         checked as a core PodSpec, strict.
    serving.kserve.io/v1beta1            a JSON schema generated from the `kserve` SDK's models (their
    InferenceService                     openapi_types / attribute_map and required setters, read from the
                                         installed package's source without importing it: the SDK's
                                         dependencies are not installed), additionalProperties false; the
                                         Kubernetes types it names resolve to the same core definitions.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils as kv_utils
from referencing import Registry, Resource

# The newest bundled: the kserve 0.21 SDK names core types up to Kubernetes 1.37 (PodSchedulingGroup).
K8S_VERSION = "1.37"
DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
# Fields a Knative revision's pod spec has beyond a core PodSpec.
KNATIVE_REVISION_FIELDS = ("timeoutSeconds", "containerConcurrency", "responseStartTimeoutSeconds",
                           "idleTimeoutSeconds")


class SchemaMissing(AssertionError):
    """No schema is known for the resource: the check fails rather than passing unchecked."""


@cache
def _definitions() -> dict[str, Any]:
    version = [v for v in kv_utils.all_versions() if kv_utils.major_minor(v) <= K8S_VERSION][-1]
    defs: dict[str, Any] = kv_utils.schema_contents(
        f"kubernetes-json-schema/v{version}-local-strict/_definitions.json", K8S_VERSION)
    return defs


def _registry() -> Registry:
    return Resource.from_contents(_definitions()) @ Registry()


def core_fragment(value: Any, definition: str) -> None:
    """Validate `value` against one core definition (io.k8s.api.core.v1.PodSpec), strict."""
    if definition not in _definitions()["$defs"]:
        raise SchemaMissing(f"no core definition {definition}")
    schema = {"$ref": f"{DEFINITIONS_ID}#/$defs/{definition}"}
    jsonschema.validators.Draft202012Validator(schema, registry=_registry()).validate(value)


# --- KServe: a schema from the SDK's generated models ---------------------------------------------
_CORE_ALIASES = {
    "V1ObjectMeta": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    "V1ListMeta": "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
    "V1Time": "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
    "ResourceQuantity": "io.k8s.apimachinery.pkg.api.resource.Quantity",
    # Named by V1beta1MetricTarget but not shipped with the SDK; KServe's Go type is a resource.Quantity.
    "V1beta1MetricQuantity": "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "K8sIoApiAppsV1DeploymentStrategy": "io.k8s.api.apps.v1.DeploymentStrategy",
    "K8sIoApiAutoscalingV2HorizontalPodAutoscalerBehavior": "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerBehavior",
}


def _core_name(type_name: str) -> str | None:
    if type_name in _CORE_ALIASES:
        return _CORE_ALIASES[type_name]
    match = re.fullmatch(r"V1([A-Z]\w*)", type_name)
    if match and f"io.k8s.api.core.v1.{match.group(1)}" in _definitions()["$defs"]:
        return f"io.k8s.api.core.v1.{match.group(1)}"
    return None


@cache
def _kserve_models() -> dict[str, tuple[dict[str, str], dict[str, str], frozenset[str]]]:
    """Class name -> (openapi_types, attribute_map, required attributes), from kserve/models/*.py."""
    try:
        dist = importlib.metadata.distribution("kserve")
    except importlib.metadata.PackageNotFoundError:
        raise SchemaMissing("the kserve package is not installed (scripts/install.sh installs it "
                            "without its dependencies)") from None
    models: dict[str, tuple[dict[str, str], dict[str, str], frozenset[str]]] = {}
    for file in dist.files or []:
        if not re.fullmatch(r"kserve/models/\w+\.py", str(file)) or str(file).endswith("__init__.py"):
            continue
        source = file.read_text()
        for node in ast.parse(source).body:
            if not isinstance(node, ast.ClassDef):
                continue
            tables: dict[str, dict[str, str]] = {}
            for item in node.body:
                if isinstance(item, ast.Assign) and isinstance(item.targets[0], ast.Name) \
                        and item.targets[0].id in ("openapi_types", "attribute_map"):
                    tables[item.targets[0].id] = ast.literal_eval(item.value)
            if "openapi_types" in tables:
                required = frozenset(re.findall(r"Invalid value for `(\w+)`, must not be `None`", source))
                models[node.name] = (tables["openapi_types"], tables["attribute_map"], required)
    if not models:
        raise SchemaMissing("no models found in the kserve package")
    return models


def _kserve_type(type_name: str, defs: dict[str, Any]) -> dict[str, Any]:
    scalars = {"str": {"type": "string"}, "int": {"type": "integer"}, "bool": {"type": "boolean"},
               "float": {"type": "number"}, "object": {}, "datetime": {"type": "string"}}
    if type_name in scalars:
        return scalars[type_name]
    if match := re.fullmatch(r"list\[(.+)\]", type_name):
        return {"type": "array", "items": _kserve_type(match.group(1), defs)}
    if match := re.fullmatch(r"dict\(str, (.+)\)", type_name):
        return {"type": "object", "additionalProperties": _kserve_type(match.group(1), defs)}
    models = _kserve_models()
    if type_name in models:
        if type_name not in defs:
            defs[type_name] = {}  # placeholder against recursion
            types, names, required = models[type_name]
            defs[type_name] = {
                "type": "object", "additionalProperties": False,
                "properties": {names[a]: _kserve_type(t, defs) for a, t in types.items()},
                "required": sorted(names[a] for a in required),
            }
        return {"$ref": f"#/$defs/{type_name}"}
    core = _core_name(type_name)
    if core is not None:
        return {"$ref": f"{DEFINITIONS_ID}#/$defs/{core}"}
    # A type the SDK names but neither ships nor maps to a core definition (Knative's status types):
    # nothing validates against it, so a rendered value there fails instead of passing unchecked.
    return {"not": {}, "description": f"no schema for {type_name}"}


@cache
def kserve_schema(model: str) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    root = _kserve_type(model, defs)
    return {"$defs": defs, **root}


def _kserve(resource: dict[str, Any]) -> None:
    schema = kserve_schema("V1beta1InferenceService")
    jsonschema.validators.Draft202012Validator(schema, registry=_registry()).validate(resource)


# --- Knative --------------------------------------------------------------------------------------
def _knative(resource: dict[str, Any]) -> None:
    from cloudcoil.models.knative_serving.serving import v1

    # strict: a string is never coerced to a number (the models' int branch of a quantity would
    # then fail outright: pydantic cannot apply the CRD's pattern to an int).
    model = v1.Service.model_validate(resource, strict=True)
    again = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    if again != resource:
        raise AssertionError(f"the Knative Service model does not keep the resource as written:\n"
                             f"written: {resource}\nmodel:   {again}")
    pod = {k: v for k, v in resource["spec"]["template"]["spec"].items() if k not in KNATIVE_REVISION_FIELDS}
    core_fragment(pod, "io.k8s.api.core.v1.PodSpec")


def validate(resource: dict[str, Any]) -> str:
    """Validate one resource; returns what checked it. Raises on any violation or missing schema."""
    api_version, kind = resource.get("apiVersion"), resource.get("kind")
    if api_version == "serving.knative.dev/v1" and kind == "Service":
        _knative(resource)
        return "cloudcoil knative-serving v1.Service + core PodSpec"
    if api_version == "serving.kserve.io/v1beta1" and kind == "InferenceService":
        _kserve(resource)
        return "kserve SDK models V1beta1InferenceService"
    if isinstance(api_version, str) and "." in api_version.split("/")[0]:
        raise SchemaMissing(f"no schema for {api_version} {kind}")
    try:
        kubernetes_validate.validate(resource, K8S_VERSION, strict=True)
    except kv_utils.SchemaNotFoundError as exc:
        raise SchemaMissing(str(exc)) from None
    return f"kubernetes-validate {K8S_VERSION} strict"
