"""Image references, registry credentials, login, push and pull.

    ref = parse_reference("127.0.0.1:5000/team/model:v1")
    pushed = push(image.id, ref, username="pack", password=pw)   # or credentials from ~/.docker
    pulled = pull(pushed.pinned)                                   # by digest
"""

from __future__ import annotations

from packager.registry.credentials import (
    Credentials,
    build_logins,
    from_docker_config,
    resolve_credentials,
)
from packager.registry.events import TransferCallback, TransferEvent
from packager.registry.failures import RegistryFailure, RegistryOperationError, classify
from packager.registry.login import login
from packager.registry.pull import PulledImage, pull
from packager.registry.push import PushedImage, push
from packager.registry.reference import (
    DEFAULT_REGISTRY,
    DEFAULT_TAG,
    ImageReference,
    parse_reference,
)

__all__ = [
    "DEFAULT_REGISTRY",
    "DEFAULT_TAG",
    "Credentials",
    "build_logins",
    "ImageReference",
    "PulledImage",
    "PushedImage",
    "RegistryFailure",
    "RegistryOperationError",
    "TransferCallback",
    "TransferEvent",
    "classify",
    "from_docker_config",
    "login",
    "parse_reference",
    "pull",
    "push",
    "resolve_credentials",
]
