"""Classifying what registries and the engine say, no engine needed."""

from __future__ import annotations

import pytest

from packager.registry import RegistryFailure, classify
from packager.registry.failures import registry_error


@pytest.mark.parametrize(
    ("detail", "kind"),
    [
        ("unauthorized: authentication required", RegistryFailure.AUTH),
        ("no basic auth credentials", RegistryFailure.AUTH),
        ("login attempt to http://127.0.0.1:5000/v2/ failed with status: 401 Unauthorized", RegistryFailure.AUTH),
        ("unauthorized: incorrect username or password", RegistryFailure.AUTH),
        ('Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused',
         RegistryFailure.UNREACHABLE),
        ('Get "https://nope.invalid/v2/": dial tcp: lookup nope.invalid: no such host', RegistryFailure.UNREACHABLE),
        ('Get "https://r:5000/v2/": http: server gave HTTP response to HTTPS client', RegistryFailure.UNREACHABLE),
        ("denied: requested access to the resource is denied", RegistryFailure.DENIED),
        ("denied: Permission \"artifactregistry.repositories.uploadArtifacts\" denied", RegistryFailure.DENIED),
        ("manifest for r/m:v1 not found: manifest unknown: manifest unknown", RegistryFailure.NOT_FOUND),
        ("name unknown: repository name not known to registry", RegistryFailure.NOT_FOUND),
        ("blob upload unknown: blob upload unknown to registry", RegistryFailure.INTERRUPTED),
        ("An image does not exist locally with the tag: r/m", RegistryFailure.LOCAL_IMAGE),
        ("something new: sha256:4014034010abc", RegistryFailure.OTHER),  # digits in digests are not statuses
    ],
)
def test_classify(detail: str, kind: RegistryFailure) -> None:
    assert classify(detail) is kind


def test_messages_distinguish_refused_from_missing_credentials() -> None:
    refused = registry_error("push", "r/m:v1", "r", "unauthorized: authentication required", username="me",
                             have_credentials=True)
    assert "refused the login for user me" in str(refused) and refused.kind is RegistryFailure.AUTH
    missing = registry_error("push", "r/m:v1", "r", "no basic auth credentials", username=None, have_credentials=False)
    assert "no credentials were found" in str(missing) and "docker login r" in (missing.hint or "")
    interrupted = registry_error("push", "r/m:v1", "r", "unexpected EOF", username=None, have_credentials=False)
    assert "run the push again" in (interrupted.hint or "")
