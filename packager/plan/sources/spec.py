"""What one model_cache entry asks for, and which source serves it (truss-compat.md §1.3, §6.1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from packager.errors import PlanError

DEFAULT_SECRET_NAME = "hf_access_token"
SCHEMES = {"s3://": "s3", "gs://": "gcs", "azure://": "azure"}


@dataclass(frozen=True)
class SourceSpec:
    """The primitive fields of one model_cache entry or `weights:` source, as validated by the
    config loader.

    `index` is the entry's position in its section; with `section` it only serves messages.
    `mount_location` (weights sources): files land at <mount_location>/<path in the source>,
    whatever the mode. A secret name of None means anonymous (HF: HF_TOKEN still applies).
    """

    repo_id: str
    use_volume: bool
    revision: str = ""
    kind: str | None = None  # None: the key was absent (hf unless the repo_id prefix says else)
    allow_patterns: Sequence[str] | None = None
    ignore_patterns: Sequence[str] | None = None
    volume_folder: str | None = None
    runtime_secret_name: str | None = DEFAULT_SECRET_NAME
    index: int | None = None
    section: str = "model_cache"
    mount_location: str | None = None

    @property
    def where(self) -> str:
        """Prefix for messages: `model_cache[1] (org/name)`, `weights[0] (hf://org/name@main)`."""
        field = f"{self.section}[{self.index}]" if self.index is not None else f"{self.section} entry"
        return f"{field} ({self.source_uri})"

    @property
    def source_uri(self) -> str:
        if self.section == "weights" and (self.kind or "hf") == "hf":
            return f"hf://{self.repo_id}" + (f"@{self.revision}" if self.revision else "")
        return self.repo_id


@dataclass(frozen=True)
class BucketLocation:
    """s3://bucket/prefix or gs://bucket/prefix, split. `prefix` has no leading or trailing '/'."""

    scheme: str  # "s3" | "gs"
    bucket: str
    prefix: str

    @property
    def uri(self) -> str:
        return (
            f"{self.scheme}://{self.bucket}/{self.prefix}"
            if self.prefix
            else f"{self.scheme}://{self.bucket}"
        )

    def relative_path(self, key: str) -> str | None:
        """Path of `key` below the prefix, or None if the key is not inside it.

        The prefix is a folder: s3://b/models/bert holds models/bert/x but not models/bert-large/x.
        A prefix naming a single object yields that object's base name.
        """
        if not self.prefix:
            return key
        if key == self.prefix:
            return key.rsplit("/", 1)[-1]
        folder = self.prefix + "/"
        return key[len(folder) :] if key.startswith(folder) else None


def source_kind(spec: SourceSpec) -> str:
    """hf | s3 | gcs | azure | https. The prefix decides when kind is hf or absent; a
    contradiction is an error."""
    if spec.kind == "https":
        return "https"
    scheme = next((k for p, k in SCHEMES.items() if spec.repo_id.startswith(p)), None)
    kind = spec.kind or "hf"
    if scheme is None or kind in ("hf", scheme):
        return scheme or kind
    raise PlanError(
        f"{spec.where}: kind '{kind}' contradicts the repo_id prefix "
        f"'{spec.repo_id.split('://')[0]}://'",
        hint=f"set kind: {scheme} or drop the kind key (the prefix is enough)",
    )


def bucket_location(spec: SourceSpec, scheme: str) -> BucketLocation:
    """Parse `<scheme>://bucket/prefix` (or `bucket/prefix` when kind is given explicitly)."""
    rest = spec.repo_id.split("://", 1)[1] if "://" in spec.repo_id else spec.repo_id
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise PlanError(
            f"{spec.where}: no bucket name in '{spec.repo_id}'",
            hint=f"write it as {scheme}://<bucket>/<prefix>",
        )
    return BucketLocation(scheme=scheme, bucket=bucket, prefix=prefix.strip("/"))


def require_prefix(spec: SourceSpec, location: BucketLocation) -> None:
    """Volume mode mirrors a folder under volume_folder, so a bare bucket is refused (as Truss)."""
    if spec.use_volume and not location.prefix:
        raise PlanError(
            f"{spec.where}: '{location.uri}' names a whole bucket; volume mode needs a key prefix",
            hint=f"point repo_id at the folder holding the weights, e.g. "
            f"{location.scheme}://{location.bucket}/<folder>",
        )


# `weights:` URI schemes pack fetches, and the source kind each maps to (truss-compat §1.4).
# The config accepts https:// only (Truss's rule); plain http:// serves local stand-ins.
WEIGHTS_SCHEMES = {"hf": "hf", "s3": "s3", "gs": "gcs", "https": "https", "http": "https"}


def weights_spec(
    source: str,
    mount_location: str,
    *,
    allow_patterns: Sequence[str] | None = None,
    ignore_patterns: Sequence[str] | None = None,
    secret_name: str | None = None,
    index: int | None = None,
) -> SourceSpec:
    """One `weights:` source as a SourceSpec: hf://owner/repo[@revision], s3://bucket/prefix,
    gs://bucket/prefix or https://host/path, placed under mount_location."""
    scheme, _, rest = source.partition("://")
    kind = WEIGHTS_SCHEMES.get(scheme)
    where = f"weights[{index}] ({source})" if index is not None else f"weights source {source}"
    if kind is None:
        raise PlanError(f"{where}: pack cannot fetch {scheme}:// sources",
                        hint="copy the files to hf://, s3://, gs:// or an https:// URL")
    repo_id, revision = source, ""
    if kind == "hf":
        repo_id, _, revision = rest.partition("@")
    return SourceSpec(
        repo_id=repo_id, use_volume=False, revision=revision, kind=kind,
        allow_patterns=allow_patterns, ignore_patterns=ignore_patterns,
        runtime_secret_name=secret_name, index=index, section="weights",
        mount_location=mount_location,
    )
