"""GCS objects over the JSON API's media download, through the engine's own HTTP client.

Why not google-cloud-storage's download helpers: they buffer whole ranges in memory and retry on
their own. The media endpoint takes plain Range requests, so GCS shares the HTTP code path
(keep-alive, proxies, stall detection); google-auth (installed with google-cloud-storage) is used
only to mint an access token from a service-account secret. Without a secret the request is
anonymous (public buckets, or the emulator named by STORAGE_EMULATOR_HOST).

A resolved revision made only of digits is taken as the object generation and pinned.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

from packager import constants

from .errors import PermanentError

GCS_API = "https://storage.googleapis.com"
_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"


def gcs_endpoint(env: Mapping[str, str]) -> str:
    emulator = env.get(constants.STORAGE_EMULATOR_HOST)
    if emulator:
        return emulator if "://" in emulator else f"http://{emulator}"
    return GCS_API


def gcs_media_url(env: Mapping[str, str], bucket: str, key: str, revision: str) -> str:
    url = f"{gcs_endpoint(env).rstrip('/')}/download/storage/v1/b/{quote(bucket, safe='')}" \
          f"/o/{quote(key, safe='')}?alt=media"
    if revision.isdigit():
        url += f"&generation={revision}"
    return url


class _Credentials(Protocol):
    """google.oauth2.service_account.Credentials, as used here (google-auth is optional, and its
    from_service_account_info carries no annotations)."""

    valid: bool
    token: str

    def refresh(self, request: object) -> None: ...


class ServiceAccountToken:
    """Access tokens from a service-account JSON, refreshed before they expire."""

    def __init__(self, info: dict[str, Any]):
        self._info = info
        self._creds: _Credentials | None = None
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if self._creds is None:
                try:
                    from google.oauth2 import service_account
                except ImportError:
                    raise PermanentError(
                        "a GCS service-account secret needs google-auth, which is not installed"
                    ) from None
                from_info: Callable[..., _Credentials] = service_account.Credentials.from_service_account_info
                try:
                    self._creds = from_info(self._info, scopes=[_SCOPE])
                except (ValueError, KeyError) as exc:
                    raise PermanentError(f"GCS service-account secret is invalid: {exc}") from None
            if not self._creds.valid:  # google-auth refreshes ahead of expiry
                from google.auth.transport.requests import Request

                self._creds.refresh(Request())
            return self._creds.token


def token_provider(info: dict[str, Any] | None) -> Callable[[], str | None] | None:
    return ServiceAccountToken(info) if info else None
