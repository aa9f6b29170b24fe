"""Turning what the engine says about a registry into errors a user can act on.

Registry errors arrive as free text (inside the push/pull JSON stream, or in an APIError from
/auth or /images/create) and differ between registries, so they are classified by the phrases
the distribution spec and Docker use.
"""

from __future__ import annotations

import enum

from packager.errors import RegistryError


class RegistryFailure(enum.Enum):
    AUTH = "auth"  # credentials missing or refused
    UNREACHABLE = "unreachable"  # nothing answers, DNS, TLS trouble
    DENIED = "denied"  # logged in, but not allowed to this repository
    NOT_FOUND = "not_found"  # repository, tag or digest does not exist
    INTERRUPTED = "interrupted"  # the transfer broke off; repeating it resumes
    LOCAL_IMAGE = "local_image"  # the image to push is not in the engine
    OTHER = "other"


class RegistryOperationError(RegistryError):
    """A RegistryError that knows which kind of failure it was and what the registry said."""

    def __init__(self, message: str, *, kind: RegistryFailure, detail: str, hint: str | None = None):
        self.kind = kind
        self.detail = detail
        super().__init__(message, hint)


_PHRASES: list[tuple[RegistryFailure, tuple[str, ...]]] = [
    (RegistryFailure.LOCAL_IMAGE, ("does not exist locally", "no such image")),
    (
        RegistryFailure.UNREACHABLE,
        (
            "connection refused", "no such host", "i/o timeout", "network is unreachable",
            "no route to host", "server gave http response to https client", "x509:", "tls:",
            "context deadline exceeded", "connection reset by peer", "dial tcp",
        ),
    ),
    (
        RegistryFailure.AUTH,
        (
            "unauthorized", "authentication required", "no basic auth credentials", "status: 401",
            "incorrect username or password", "invalid username/password",
        ),
    ),
    (RegistryFailure.DENIED, ("denied", "forbidden", "status: 403", "insufficient_scope")),
    (
        RegistryFailure.NOT_FOUND,
        ("manifest unknown", "name unknown", "not found", "repository does not exist", "status: 404"),
    ),
    (RegistryFailure.INTERRUPTED, ("unexpected eof", "blob upload unknown", "broken pipe", "canceled")),
]


def classify(detail: str) -> RegistryFailure:
    lowered = detail.lower()
    for kind, phrases in _PHRASES:
        if any(phrase in lowered for phrase in phrases):
            return kind
    return RegistryFailure.OTHER


def registry_error(
    action: str, target: str, registry: str, detail: str, *, username: str | None, have_credentials: bool
) -> RegistryOperationError:
    """A RegistryOperationError for `action` ("push", "pull", "login") of `target`."""
    kind = classify(detail)
    said = detail.strip().splitlines()[0] if detail.strip() else "no detail"
    if kind is RegistryFailure.AUTH:
        if have_credentials:
            message = f"{registry} refused the login for user {username or '(token)'}: {said}"
            hint = "check the username and password (or token); with --password-stdin, check what was piped"
        else:
            message = f"{registry} requires a login and no credentials were found for it: {said}"
            hint = f"run `docker login {registry}`, or pass --username and --password-stdin"
    elif kind is RegistryFailure.UNREACHABLE:
        message = f"cannot reach registry {registry}: {said}"
        hint = "check the registry address and port, and that it is running and reachable from the Docker engine"
        if "http response to https client" in detail.lower():
            hint = f"{registry} speaks plain HTTP; add it to the engine's insecure-registries"
    elif kind is RegistryFailure.DENIED:
        message = f"{registry} denied {action} of {target}: {said}"
        hint = "the account lacks access to this repository, or the repository must be created first"
    elif kind is RegistryFailure.NOT_FOUND:
        message = f"{target} not found on {registry}: {said}"
        hint = "check the repository name, tag or digest (names are case-sensitive, lower case)"
    elif kind is RegistryFailure.INTERRUPTED:
        message = f"{action} of {target} was interrupted: {said}"
        hint = f"run the {action} again; layers already uploaded are not sent twice"
    elif kind is RegistryFailure.LOCAL_IMAGE:
        message = f"cannot {action} {target}: the image is not in the local engine ({said})"
        hint = "build it first (pack build)"
    else:
        message = f"{action} of {target} failed: {said}"
        hint = None
    return RegistryOperationError(message, kind=kind, detail=detail, hint=hint)
