"""Weight sources: model_cache (ModelRepo), weights (WeightsSource) and bdn."""

from __future__ import annotations

import enum
import posixpath
import re
from typing import Annotated, Any

import pydantic

from .base import ConfigModel, Violation, raise_all

NonEmpty = Annotated[str, pydantic.StringConstraints(min_length=1)]
CLOUD_PREFIXES = {"gs://": "gcs", "s3://": "s3", "azure://": "azure"}


class RepoKind(str, enum.Enum):
    hf = "hf"
    gcs = "gcs"
    s3 = "s3"
    azure = "azure"


def prefix_kind(repo_id: str) -> str | None:
    """The source kind a repo_id's URI prefix implies, or None for a bare HF `owner/name`."""
    for prefix, kind in CLOUD_PREFIXES.items():
        if repo_id.startswith(prefix):
            return kind
    return None


class ModelRepo(ConfigModel):
    repo_id: NonEmpty
    revision: str = ""
    allow_patterns: list[str] | None = None
    ignore_patterns: list[str] | None = None
    volume_folder: NonEmpty | None = None
    use_volume: bool
    kind: RepoKind = RepoKind.hf
    runtime_secret_name: str = "hf_access_token"

    @pydantic.field_validator("revision")
    @classmethod
    def _revision(cls, value: str) -> str:
        if len(value) == 1:
            raise Violation(
                "revision must be empty or at least 2 characters",
                hint="use a commit sha, a tag or a branch name",
            )
        return value

    @pydantic.field_validator("allow_patterns")
    @classmethod
    def _allow(cls, value: list[str] | None) -> list[str] | None:
        if value == []:
            raise Violation(
                "allow_patterns: [] matches no file",
                hint="remove allow_patterns to take every file, or list the patterns to keep",
            )
        return value

    @pydantic.field_validator("volume_folder")
    @classmethod
    def _folder(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value.startswith("/") or "/" in value or value in (".", "..") or "\x00" in value:
            raise Violation(
                f"volume_folder `{value}` must be a single folder name",
                hint="use a plain name such as `llama-8b`; files land in /app/model_cache/<name>/",
            )
        return value

    @pydantic.model_validator(mode="after")
    def _rules(self) -> ModelRepo:
        found: list[Violation] = []
        implied = prefix_kind(self.repo_id)
        effective = implied or self.kind.value
        if implied and self.kind.value not in ("hf", implied):
            found.append(
                Violation(
                    f"kind `{self.kind.value}` contradicts repo_id `{self.repo_id}`, "
                    f"which is a {implied} location",
                    hint=f"set kind: {implied}, or remove kind (the prefix decides)",
                    at=("kind",),
                )
            )
        if self.use_volume:
            if effective == "hf" and not self.revision:
                found.append(
                    Violation(
                        f"revision is required for repo `{self.repo_id}` with use_volume: true",
                        hint="pin a commit sha (or at least a branch/tag): revision: main",
                        at=("revision",),
                    )
                )
            if self.volume_folder is None:
                found.append(
                    Violation(
                        "volume_folder is required for use_volume: true repos",
                        hint="add volume_folder: <name>; files land in /app/model_cache/<name>/",
                        at=("volume_folder",),
                    )
                )
        raise_all(found)
        return self

    @property
    def source_kind(self) -> str:
        return prefix_kind(self.repo_id) or self.kind.value


class ModelRepoCacheInternal(ModelRepo):
    use_volume: bool = False


# --- weights (the newer API) -----------------------------------------------------------------

_CLOUD_SCHEMES = ("s3://", "gs://", "azure://", "r2://", "cw://")
_SCHEMES = sorted(set(_CLOUD_SCHEMES) | {"hf://", "https://"})
_AUTH_FIELDS = (
    "auth_secret_name", "aws_oidc_role_arn", "aws_oidc_region", "gcp_oidc_service_account",
    "gcp_oidc_workload_id_provider", "aws_assume_role_arn", "aws_assume_role_region",
)
_AUTH_REQUIRED = {
    "CUSTOM_SECRET": ("auth_secret_name",),
    "AWS_OIDC": ("aws_oidc_role_arn", "aws_oidc_region"),
    "GCP_OIDC": ("gcp_oidc_service_account", "gcp_oidc_workload_id_provider"),
    "AWS_ASSUME_ROLE": ("aws_assume_role_arn", "aws_assume_role_region"),
}


class WeightsAuthMethod(str, enum.Enum):
    CUSTOM_SECRET = "CUSTOM_SECRET"
    AWS_OIDC = "AWS_OIDC"
    GCP_OIDC = "GCP_OIDC"
    AWS_ASSUME_ROLE = "AWS_ASSUME_ROLE"


def check_auth_fields(model: Any, method: str, required: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    """Truss's rule: the chosen method's fields are required, every other method's forbidden."""
    found = [
        Violation(f"{name} must be provided when auth_method is {method}",
                  hint=f"add {name}: <value>, or choose another auth_method", at=(name,))
        for name in required
        if getattr(model, name, None) in (None, "")
    ]
    found += [
        Violation(
            f"{name} cannot be specified when auth_method is {method}",
            hint=f"remove {name}",
            at=(name,),
        )
        for name in _AUTH_FIELDS
        if name not in required and name not in allowed and getattr(model, name, None) not in (None, "")
    ]
    raise_all(found)


class AuthFields(ConfigModel):
    """The cloud-identity fields weights auth and base-image registry auth share (as in Truss).
    Subclasses define `auth_method`; it is matched case-insensitively."""

    aws_oidc_role_arn: str | None = None
    aws_oidc_region: str | None = None
    gcp_oidc_service_account: str | None = None
    gcp_oidc_workload_id_provider: str | None = None
    aws_assume_role_arn: str | None = None
    aws_assume_role_region: str | None = None

    @pydantic.field_validator("auth_method", mode="before", check_fields=False)
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class WeightsAuth(AuthFields):
    auth_method: WeightsAuthMethod
    auth_secret_name: str | None = None

    @pydantic.model_validator(mode="after")
    def _fields(self) -> WeightsAuth:
        method = self.auth_method.value
        check_auth_fields(self, method, _AUTH_REQUIRED[method], ())
        return self


class WeightsSource(ConfigModel):
    source: NonEmpty
    mount_location: NonEmpty
    auth: WeightsAuth | None = None
    auth_secret_name: str | None = None
    allow_patterns: list[str] | None = None
    ignore_patterns: list[str] | None = None

    @pydantic.field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        schemes = ", ".join(_SCHEMES)
        if "://" not in value:
            raise Violation(
                f"source '{value}' is missing a URI scheme",
                hint=f"prefix it with one of {schemes} (e.g. hf://{value})",
            )
        scheme = value.split("://")[0] + "://"
        rest = value[len(scheme):]
        if scheme not in _SCHEMES:
            raise Violation(f"unsupported source scheme '{scheme}'", hint=f"use one of {schemes}")
        if not rest or rest.startswith("/"):
            raise Violation(
                f"invalid {scheme[:-3]} URI '{value}'",
                hint=f"expected {scheme}bucket/path" if scheme in _CLOUD_SCHEMES else
                f"expected {scheme}owner/repo" if scheme == "hf://" else "expected https://host/path",
            )
        if scheme in _CLOUD_SCHEMES and "@" in rest:
            raise Violation(
                "the @ revision syntax is only valid for HuggingFace sources (hf://)",
                hint=f"remove the @… suffix from '{value}'",
            )
        return value

    @pydantic.field_validator("mount_location")
    @classmethod
    def _mount(cls, value: str) -> str:
        if not value.startswith("/"):
            raise Violation(
                f"mount_location must be an absolute path (start with /), got: {value}",
                hint=f"use /{value}",
            )
        return value

    @property
    def scheme(self) -> str:
        return self.source.split("://", 1)[0]

    @property
    def secret_name(self) -> str | None:
        """The secret holding this source's credential (either spelling), None for anonymous."""
        if self.auth_secret_name:
            return self.auth_secret_name
        return self.auth.auth_secret_name if self.auth and self.auth.auth_secret_name else None

    @pydantic.model_validator(mode="after")
    def _secret_once(self) -> WeightsSource:
        if self.auth_secret_name and self.auth and self.auth.auth_secret_name:
            raise Violation(
                "auth_secret_name is given both at the top level and in auth",
                hint="keep only one of them",
                at=("auth_secret_name",),
            )
        return self


# --- bdn (platform volumes) ---------------------------------------------------------------------

_BDN_SOURCE = re.compile(
    r"bdn:(?P<namespace>[^/:@\x00]+)/(?P<volume>[^/:@\x00]+)"
    r"(?::(?P<tag>[^/:@\x00]+)|@(?:b3:)?(?P<digest>[0-9a-fA-F]+))?"
)


def _bdn_identifier(kind: str, value: str) -> None:
    if not value or len(value) > 256 or "/" in value or ".." in value or "\x00" in value:
        raise Violation(f"invalid BDN {kind}: {value!r}",
                        hint="use 1-256 characters without '/', '..' or NUL")


class BDNVolumeMount(ConfigModel):
    source: NonEmpty
    path: NonEmpty

    @pydantic.field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        match = _BDN_SOURCE.fullmatch(value)
        if match is None:
            raise Violation(
                f"invalid BDN volume source '{value}'",
                hint="expected bdn:namespace/volume[:tag|@digest]",
            )
        _bdn_identifier("namespace", match.group("namespace"))
        _bdn_identifier("volume", match.group("volume"))
        if match.group("tag"):
            _bdn_identifier("tag", match.group("tag"))
        digest = match.group("digest")
        if digest and not 12 <= len(digest) <= 64:
            raise Violation("BDN digest must contain between 12 and 64 hexadecimal characters",
                            hint="use a longer digest prefix, or a tag")
        return value

    @pydantic.field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if "\x00" in value:
            raise Violation("volume mount must not contain NUL bytes", hint="remove the NUL byte")
        if not value.startswith("/"):
            raise Violation(f"volume mount must be an absolute path, got: {value}", hint=f"use /{value}")
        normalised = posixpath.normpath(value)
        if normalised == "/" or ".." in value.split("/"):
            raise Violation(f"volume mount `{value}` must not be / or contain `..`",
                            hint="mount at a dedicated directory such as /models/name")
        return "/" + normalised.lstrip("/")


class BDNAccessGrant(str, enum.Enum):
    pull = "pull"
    push = "push"
    tag = "tag"
    inspect = "inspect"
    delete = "delete"


class BDNAccess(ConfigModel):
    namespace: NonEmpty
    grants: Annotated[list[BDNAccessGrant], pydantic.Field(min_length=1)]

    @pydantic.field_validator("grants")
    @classmethod
    def _unique(cls, grants: list[BDNAccessGrant]) -> list[BDNAccessGrant]:
        if len(grants) != len(set(grants)):
            raise Violation("BDN access grants must be unique within a namespace",
                            hint="list each grant once")
        return grants


class BDNHotload(ConfigModel):
    enabled: bool = False


class BDNConfig(ConfigModel):
    mounts: list[BDNVolumeMount] = pydantic.Field(default_factory=list)
    access: list[BDNAccess] = pydantic.Field(default_factory=list)
    hotload: BDNHotload = pydantic.Field(default_factory=BDNHotload)

    @pydantic.model_validator(mode="after")
    def _unique(self) -> BDNConfig:
        found: list[Violation] = []
        paths: set[str] = set()
        for i, mount in enumerate(self.mounts):
            if mount.path in paths:
                found.append(Violation(f"duplicate volume mount path '{mount.path}'",
                                       hint="give each mount its own path", at=("mounts", i, "path")))
            paths.add(mount.path)
        names: set[str] = set()
        for i, entry in enumerate(self.access):
            if entry.namespace in names:
                found.append(Violation("BDN access namespaces must be unique",
                                       hint="merge the grants into one entry", at=("access", i, "namespace")))
            names.add(entry.namespace)
        raise_all(found)
        return self
