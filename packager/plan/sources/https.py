"""`weights:` sources of the form https://host/path: one file, pinned by what the server says.

A HEAD request (redirects followed, proxies from the environment) gives the size and the
validators. A plain web server publishes no content hash, so the entry is size-only unless the
server's ETag (or X-Linked-Etag, as a Hugging Face resolve URL answers) is a sha256; the revision
records the ETag and Last-Modified, so a changed file shows as a changed lock.
"""

from __future__ import annotations

import posixpath
import re
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit

from packager.errors import PlanError
from packager.plan.sources.credentials import Credentials
from packager.plan.sources.layout import mount_destination, unsafe_path_reason
from packager.plan.sources.retry import DEFAULT_RETRY, RetryPolicy, call_with_retries, is_transport_error
from packager.plan.sources.spec import SourceSpec
from packager.runtime.manifest import Digest, Entry, Revision, Source

REQUEST_TIMEOUT = 60.0
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _file_name(url: str) -> str:
    name = posixpath.basename(unquote(urlsplit(url).path))
    return name


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code == 429 or exc.code >= 500
    return isinstance(exc, urllib.error.URLError) or is_transport_error(exc)


def _digest(headers: dict[str, str]) -> Digest:
    for name in ("x-linked-etag", "etag"):
        value = headers.get(name, "").strip().removeprefix("W/").strip('"').lower()
        if _SHA256.fullmatch(value):
            return Digest("sha256", value)
    return Digest("none", "")


def resolve_https(spec: SourceSpec, credentials: Credentials, *, retry: RetryPolicy = DEFAULT_RETRY) -> list[Entry]:
    url = spec.repo_id
    name = _file_name(url)
    if not name:
        raise PlanError(f"{spec.where}: the URL names no file (its path ends with '/')",
                        hint="point source at the file itself, e.g. https://host/models/model.bin")
    request = urllib.request.Request(url, method="HEAD")
    token = credentials.secret(spec.runtime_secret_name)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token.value}")

    def head() -> dict[str, str]:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
            return {k.lower(): v for k, v in response.headers.items()}

    try:
        headers = call_with_retries(head, _is_transient, retry)
    except urllib.error.HTTPError as exc:
        hint = ("the server wants credentials: name a secret in auth_secret_name "
                f"({credentials.where_to_put(spec.runtime_secret_name)})") if exc.code in (401, 403) \
            else "check the URL"
        raise PlanError(f"{spec.where}: {url} answered HTTP {exc.code}", hint=hint) from None
    except (urllib.error.URLError, OSError) as exc:
        raise PlanError(f"{spec.where}: cannot reach {url} ({getattr(exc, 'reason', exc)})",
                        hint="check the network, proxy settings (HTTPS_PROXY/NO_PROXY) and the URL") from None
    length = headers.get("x-linked-size") or headers.get("content-length")
    if not length or not length.isdigit():
        raise PlanError(f"{spec.where}: {url} does not say how big the file is (no Content-Length)",
                        hint="serve the file from a server that answers HEAD with Content-Length, or "
                        "move it to hf://, s3:// or gs://")
    resolved = "@".join(v for v in (headers.get("etag", "").strip('"'), headers.get("last-modified", "")) if v)
    reason = unsafe_path_reason(name)
    if reason is not None or not spec.mount_location:
        raise PlanError(f"{spec.where}: cannot place '{name}' in the image: {reason or 'no mount_location'}",
                        hint="point source at a file with a plain name")
    # The URL is kept whole (query strings of signed URLs included): the runtime fetches it as is.
    return [Entry(
        source=Source("https", urlsplit(url).netloc, url, None, None),
        revision=Revision(requested=spec.revision, resolved=resolved),
        size=int(length),
        hash=_digest(headers),
        destination=mount_destination(spec.mount_location, name),
        volume_folder=None,
        secret_name=spec.runtime_secret_name,
    )]
