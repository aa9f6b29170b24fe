"""Image references: REGISTRY/NAME[:TAG][@DIGEST], normalised the way the docker CLI does.

    parse_reference("127.0.0.1:5000/team/model")  -> registry 127.0.0.1:5000, repo team/model, tag latest
    parse_reference("ubuntu")                      -> registry docker.io, repo library/ubuntu, tag latest
    parse_reference("r.io/m@sha256:<64 hex>")      -> pinned by digest, no tag
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from packager.errors import RegistryError

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9-]+)*(?::\d+)?$"
    r"|^\[[0-9a-fA-F:]+\](?::\d+)?$"
)
FORMAT_HINT = "use REGISTRY/NAME[:TAG][@sha256:DIGEST], e.g. 127.0.0.1:5000/team/model:v1"


@dataclass(frozen=True)
class ImageReference:
    registry: str  # "docker.io", "127.0.0.1:5000", "ghcr.io"
    repository: str  # path inside the registry: "library/ubuntu", "team/model"
    tag: str | None  # None only when pinned by digest without a tag
    digest: str | None = None  # "sha256:<hex>"

    @property
    def name(self) -> str:
        """registry/repository: what `docker push`/`docker tag` call the repository."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def pinned(self) -> str:
        """name@digest: the immutable form (ValueError when no digest is known)."""
        if not self.digest:
            raise ValueError(f"{self} has no digest")
        return f"{self.name}@{self.digest}"

    def with_digest(self, digest: str | None) -> ImageReference:
        return replace(self, digest=digest)

    def with_tag(self, tag: str) -> ImageReference:
        return replace(self, tag=tag)


def _bad(text: str, why: str) -> RegistryError:
    return RegistryError(f"invalid image reference {text!r}: {why}", FORMAT_HINT)


def parse_reference(text: str, *, default_tag: str = DEFAULT_TAG) -> ImageReference:
    """Parse and normalise; RegistryError (with the expected format) when malformed."""
    raw = text.strip()
    if not raw:
        raise _bad(text, "it is empty")
    rest, _, digest = raw.partition("@")
    if "@" in raw:
        if not _DIGEST.match(digest):
            raise _bad(text, f"{digest!r} is not a digest like sha256:<64 hex>")
    else:
        digest = ""
    # A tag is the part after the last ':' that comes after the last '/' (a ':' before that
    # belongs to a registry port).
    tag = ""
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.match(tag):
            raise _bad(text, f"{tag!r} is not a valid tag")

    first, _, remainder = rest.partition("/")
    # Like docker: the first component is a registry host only when it looks like one.
    if remainder and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, path = first, remainder
        if not _HOST.match(registry):
            raise _bad(text, f"{registry!r} is not a registry host")
    else:
        registry, path = DEFAULT_REGISTRY, rest
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    for component in path.split("/"):
        if not _COMPONENT.match(component):
            why = "repository names are lower case" if component.lower() != component else "bad repository name"
            raise _bad(text, f"{why} ({component!r})")
    if not tag and not digest:
        tag = default_tag
    return ImageReference(registry, path, tag or None, digest or None)
