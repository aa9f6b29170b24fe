"""deploy.yaml: how a truss runs on Kubernetes, beside config.yaml (which stays exactly Truss's).

Read with positions like config.yaml (packager.config.yaml_source), validated by a strict
pydantic model; every problem names the file, the field and the fix, all at once (ConfigError).
CLI flags override the file's warm-pool knobs. The result is frozen data (DeploySettings); what
a target makes of it is decided in packager.deploy.scaling and .targets.

    min_replicas: 1            # warm-pool knobs (seconds for scaledown_window)
    max_replicas: 4
    concurrency_target: 2
    namespace: models
    weights_cache: {kind: hostPath, path: /var/lib/pack/cache, prewarm: true}
    probes: {bandwidth_mb_per_s: 100, load_seconds: 300}
    secret_name: my-model-secrets
    chainlets: {TextEmbedder: {max_replicas: 8}}   # chains: per chainlet knobs
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic

from ..config.problems import format_path, problem_at, problems_from_validation
from ..config.schema.base import ConfigModel, Violation
from ..config.load import read_document
from ..config.yaml_source import YamlDocument
from ..errors import ConfigError, DeployError, Problem
from ..render.context import RUNTIME_CACHE_DIR
from ..runtime.serving.server import DEFAULT_SHUTDOWN_TIMEOUT

DEPLOY_FILENAME = "deploy.yaml"
KNOBS = ("min_replicas", "max_replicas", "buffer_replicas", "scaledown_window", "concurrency_target",
         "initial_replicas")
# Kubernetes object names: a DNS-1123 label (Secrets and claims may be subdomains; labels suffice).
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")

Count = Annotated[int, pydantic.Field(ge=0, strict=True)]
Positive = Annotated[int, pydantic.Field(ge=1, strict=True)]


def _check_name(value: str | None, what: str) -> str | None:
    if value is not None and (len(value) > 63 or not _NAME.fullmatch(value)):
        raise Violation(f"`{value}` is not a valid Kubernetes name for {what}",
                        hint="use at most 63 lower-case letters, digits and `-`, starting and ending "
                             "with a letter or digit")
    return value


class WarmPoolDoc(ConfigModel):
    """The warm-pool knobs (Modal's names): what each target makes of them is in README's table."""

    min_replicas: Count | None = None
    max_replicas: Positive | None = None
    buffer_replicas: Count | None = None
    scaledown_window: Count | None = None  # seconds an idle replica is kept before scaling down
    concurrency_target: Positive | None = None  # requests in flight per replica the autoscaler aims at
    initial_replicas: Count | None = None

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> WarmPoolDoc:
        low, high, initial = self.min_replicas, self.max_replicas, self.initial_replicas
        if low is not None and high is not None and low > high:
            raise Violation(f"min_replicas {low} is above max_replicas {high}",
                            hint="lower min_replicas or raise max_replicas", at=("min_replicas",))
        if initial is not None and high is not None and initial > high:
            raise Violation(f"initial_replicas {initial} is above max_replicas {high}",
                            hint="lower initial_replicas to at most max_replicas", at=("initial_replicas",))
        return self


class WeightsCacheDoc(ConfigModel):
    """Where volume-mode weights live on a node: the runtime's content-addressed cache."""

    kind: Literal["hostPath", "pvc"] = "hostPath"
    path: str = RUNTIME_CACHE_DIR  # hostPath: the directory on every node
    claim: str | None = None  # pvc: an existing PersistentVolumeClaim (ReadWriteMany, or node-local)
    prewarm: bool = False  # a DaemonSet fetches the manifest into every node's cache

    @pydantic.field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or ".." in value.split("/"):
            raise Violation(f"`{value}` is not an absolute path", hint="write the node directory as /var/lib/...")
        return value

    @pydantic.field_validator("claim")
    @classmethod
    def _claim(cls, value: str | None) -> str | None:
        return _check_name(value, "a PersistentVolumeClaim")

    @pydantic.model_validator(mode="after")
    def _kind_fields(self) -> WeightsCacheDoc:
        if self.kind == "pvc" and self.claim is None:
            raise Violation("kind pvc needs `claim`, the PersistentVolumeClaim to mount",
                            hint="add `claim: NAME` (an existing claim in the namespace)", at=("claim",))
        if self.kind == "hostPath" and self.claim is not None:
            raise Violation("`claim` applies to kind pvc only", hint="remove it, or set `kind: pvc`", at=("claim",))
        if self.kind == "pvc" and self.prewarm:
            raise Violation("prewarm fills each node's own cache, and a claim is one volume, not one per node",
                            hint="use kind hostPath for a pre-warmed node cache, or drop prewarm", at=("prewarm",))
        return self


class ProbesDoc(ConfigModel):
    """How long a replica may take to start: the weights it fetches at the expected bandwidth,
    plus the import and load of the model."""

    bandwidth_mb_per_s: float = pydantic.Field(default=100.0, gt=0)  # MB/s (10^6 bytes) from the source
    load_seconds: Positive = 300  # import + load() allowance on top of the download
    period_seconds: Positive = 10


class Toleration(ConfigModel):
    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = pydantic.Field(default=None, alias="tolerationSeconds")


class KServeDoc(ConfigModel):
    deployment_mode: Literal["Serverless", "RawDeployment"] = "Serverless"


class DeployDoc(WarmPoolDoc):
    name: str | None = None  # the workload's name (default: model_name, made a DNS label)
    namespace: str = "default"
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"  # k8s: the exposed Service
    weights_cache: WeightsCacheDoc = pydantic.Field(default_factory=WeightsCacheDoc)
    probes: ProbesDoc = pydantic.Field(default_factory=ProbesDoc)
    drain_seconds: Positive = int(DEFAULT_SHUTDOWN_TIMEOUT)  # SIGTERM -> in-flight requests finish
    secret_name: str | None = None  # the Kubernetes Secret holding config.yaml's `secrets` (default <name>-secrets)
    image_pull_secrets: list[str] = pydantic.Field(default_factory=list)
    node_selector: dict[str, str] = pydantic.Field(default_factory=dict)
    tolerations: list[Toleration] = pydantic.Field(default_factory=list)
    kserve: KServeDoc = pydantic.Field(default_factory=KServeDoc)
    chainlets: dict[str, WarmPoolDoc] = pydantic.Field(default_factory=dict)  # chains: per chainlet

    @pydantic.field_validator("name", "namespace", "secret_name")
    @classmethod
    def _names(cls, value: str | None, info: pydantic.ValidationInfo) -> str | None:
        what = {"name": "the workload", "namespace": "a namespace", "secret_name": "a Secret"}
        return _check_name(value, what[str(info.field_name)])

    @pydantic.field_validator("image_pull_secrets")
    @classmethod
    def _pull_secrets(cls, value: list[str]) -> list[str]:
        for i, name in enumerate(value):
            try:
                _check_name(name, "an image pull Secret")
            except Violation as exc:
                raise Violation(exc.message, exc.hint, at=(i,)) from None
        return value


# --- the resolved settings ----------------------------------------------------------------------
@dataclass(frozen=True)
class WarmPool:
    min_replicas: int | None = None
    max_replicas: int | None = None
    buffer_replicas: int | None = None
    scaledown_window: int | None = None
    concurrency_target: int | None = None
    initial_replicas: int | None = None

    def given(self) -> dict[str, int]:
        """The knobs that were set (by deploy.yaml or a flag), by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class WeightsCache:
    kind: str = "hostPath"
    path: str = RUNTIME_CACHE_DIR
    claim: str | None = None
    prewarm: bool = False


@dataclass(frozen=True)
class Probes:
    bandwidth_mb_per_s: float = 100.0
    load_seconds: int = 300
    period_seconds: int = 10


@dataclass(frozen=True)
class DeploySettings:
    """Everything deploy.yaml and the flags decide, resolved; defaults are a truss's first deploy."""

    warm_pool: WarmPool = field(default_factory=WarmPool)
    name: str | None = None
    namespace: str = "default"
    service_type: str = "ClusterIP"
    weights_cache: WeightsCache = field(default_factory=WeightsCache)
    probes: Probes = field(default_factory=Probes)
    drain_seconds: int = int(DEFAULT_SHUTDOWN_TIMEOUT)
    secret_name: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[tuple[tuple[str, Any], ...], ...] = ()  # each a sorted (field, value) tuple
    kserve_mode: str = "Serverless"
    chainlets: tuple[tuple[str, WarmPool], ...] = ()
    source: str | None = None  # the deploy.yaml read, for messages

    def for_chainlet(self, *names: str) -> DeploySettings:
        """The settings of one chainlet: its `chainlets:` entry (by class or display name) over
        the chain-wide knobs."""
        own = dict(self.chainlets)
        for name in names:
            if name in own:
                merged = {**self.warm_pool.given(), **own[name].given()}
                return replace(self, warm_pool=WarmPool(**merged))
        return self

    def with_overrides(self, **knobs: int | None) -> DeploySettings:
        """CLI flags over deploy.yaml: a knob given on the command line wins."""
        unknown = set(knobs) - set(KNOBS)
        if unknown:
            raise ValueError(f"not warm-pool knobs: {sorted(unknown)}")
        merged = {**self.warm_pool.given(), **{k: v for k, v in knobs.items() if v is not None}}
        pool = WarmPool(**merged)
        _check_order(pool, "the command line")
        return replace(self, warm_pool=pool)


def _check_order(pool: WarmPool, where: str) -> None:
    try:
        WarmPoolDoc(**pool.given())
    except pydantic.ValidationError as exc:
        detail = exc.errors(include_url=False)[0]
        cause = (detail.get("ctx") or {}).get("error")
        message = cause.message if isinstance(cause, Violation) else detail["msg"]
        hint = cause.hint if isinstance(cause, Violation) else None
        raise DeployError(f"{where} and deploy.yaml together: {message}", hint) from None


def _pool(doc: WarmPoolDoc) -> WarmPool:
    return WarmPool(**{name: getattr(doc, name) for name in KNOBS})


def settings_from(doc: DeployDoc, source: str | None = None) -> DeploySettings:
    return DeploySettings(
        warm_pool=_pool(doc), name=doc.name, namespace=doc.namespace, service_type=doc.service_type,
        weights_cache=WeightsCache(doc.weights_cache.kind, doc.weights_cache.path, doc.weights_cache.claim,
                                   doc.weights_cache.prewarm),
        probes=Probes(doc.probes.bandwidth_mb_per_s, doc.probes.load_seconds, doc.probes.period_seconds),
        drain_seconds=doc.drain_seconds, secret_name=doc.secret_name,
        image_pull_secrets=tuple(doc.image_pull_secrets), node_selector=tuple(sorted(doc.node_selector.items())),
        tolerations=tuple(tuple(sorted(t.model_dump(by_alias=True, exclude_none=True).items()))
                          for t in doc.tolerations),
        kserve_mode=doc.kserve.deployment_mode,
        chainlets=tuple(sorted((name, _pool(pool)) for name, pool in doc.chainlets.items())),
        source=source,
    )


# --- reading deploy.yaml ------------------------------------------------------------------------
def _allowed_keys(path: tuple[Any, ...]) -> list[str]:
    model: Any = DeployDoc
    for part in path:
        if model is DeployDoc and part == "chainlets":
            model = dict
            continue
        if model is dict:
            model = WarmPoolDoc
            continue
        info = model.model_fields.get(part) if isinstance(part, str) and hasattr(model, "model_fields") else None
        if info is None:
            return []
        annotation = info.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, pydantic.BaseModel)),
                     None)
        if model is None:
            return []
    return sorted(model.model_fields) if model is not dict else []


def _unknown_key(file: str, doc: YamlDocument, path: tuple[Any, ...]) -> Problem:
    key, parent = str(path[-1]), path[:-1]
    choices = _allowed_keys(parent)
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    where = f"in {format_path(parent)}" if parent else "at the top level"
    hint = f"did you mean `{close[0]}`?" if close else (f"valid keys here: {', '.join(choices)}" if choices
                                                         else "remove it")
    return problem_at(file, doc, path, f"unknown key `{key}` {where}", hint)


def load_deploy_file(path: Path) -> DeploySettings:
    """deploy.yaml -> DeploySettings; ConfigError naming the file, the field and the fix."""
    file = str(path)
    doc = read_document(path)
    problems = [Problem(file, format_path(d.path), d.second.line, d.second.column,
                        f"duplicate key `{d.path[-1]}` (first defined at line {d.first.line})",
                        "keep only one of the two; YAML silently uses the last one") for d in doc.duplicates]
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise ConfigError(problems=[problem_at(file, doc, (), f"{DEPLOY_FILENAME} must be a mapping of keys to values",
                                               "start the file with keys such as `min_replicas: 1`")])
    try:
        parsed = DeployDoc.model_validate(data)
    except pydantic.ValidationError as exc:
        found, unknown = problems_from_validation(file, doc, exc, data)
        problems += [_unknown_key(file, doc, p) for p in unknown] + found
    if problems:
        raise ConfigError(problems=problems)
    return settings_from(parsed, file)


def deploy_settings(truss_dir: Path, deploy_file: Path | None = None) -> DeploySettings:
    """The settings of a truss: `deploy_file`, else TRUSS_DIR/deploy.yaml, else the defaults."""
    if deploy_file is not None:
        if not deploy_file.is_file():
            raise ConfigError(problems=[Problem(str(deploy_file), "", None, None, "no such deploy file",
                                                "pass an existing file, or leave --deploy-file out")])
        return load_deploy_file(deploy_file)
    beside = (truss_dir if truss_dir.is_dir() else truss_dir.parent) / DEPLOY_FILENAME
    return load_deploy_file(beside) if beside.is_file() else DeploySettings()


__all__ = ["DEPLOY_FILENAME", "KNOBS", "DeployDoc", "DeploySettings", "Probes", "WarmPool", "WeightsCache",
           "deploy_settings", "load_deploy_file", "settings_from"]
