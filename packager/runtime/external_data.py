"""config.yaml's external_data, fetched during the build (its own stage, copied into /app/data):

    python -m packager.runtime.external_data ITEMS.json OUT_DIR

ITEMS.json is a list of {"url", "local_data_path", "sha256" (or null)}. Each URL is streamed to a
temporary file beside its destination, checked against its sha256 when one is given, and renamed
into place; an HTTP error, a short body or a digest mismatch fails the build with the URL, never
a half-written file (Truss curls it, unchecked). Transient failures (connection errors, 429,
5xx) are retried. Standard library only: this runs in the base image before pack installs
anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

ATTEMPTS = 4
TIMEOUT_SECONDS = 600
CHUNK = 1 << 20


class FetchError(Exception):
    """A file that cannot be fetched as asked; the message names the URL and the cause."""


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code == 429 or exc.code >= 500
    return isinstance(exc, (urllib.error.URLError, ConnectionError, TimeoutError))


def _download(url: str, partial: str) -> str:
    """Stream url into partial; the sha256 of what arrived."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, open(partial, "wb") as out:
        expected = response.headers.get("Content-Length")
        received = 0
        while True:
            chunk = response.read(CHUNK)
            if not chunk:
                break
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
        if expected is not None and expected.isdigit() and received != int(expected):
            raise ConnectionError(f"the body ended after {received} of {expected} bytes")
    return digest.hexdigest()


def fetch(url: str, destination: str, sha256: str | None) -> None:
    os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
    partial = f"{destination}.pack-partial"
    for attempt in range(1, ATTEMPTS + 1):
        try:
            got = _download(url, partial)
            break
        except Exception as exc:  # noqa: BLE001 - every failure is reported with the URL below
            if attempt == ATTEMPTS or not _transient(exc):
                if os.path.exists(partial):
                    os.unlink(partial)
                raise FetchError(f"external_data {url}: {exc}") from None
            time.sleep(min(2.0 ** attempt, 10.0))
    if sha256 and got != sha256.lower():
        os.unlink(partial)
        raise FetchError(f"external_data {url} has sha256 {got}, expected {sha256}")
    os.replace(partial, destination)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m packager.runtime.external_data ITEMS.json OUT_DIR\n")
        return 2
    with open(argv[0], encoding="utf-8") as fh:
        items: list[dict[str, Any]] = json.load(fh)
    root = os.path.abspath(argv[1])
    try:
        for item in items:
            destination = os.path.normpath(os.path.join(root, item["local_data_path"]))
            if not destination.startswith(root + os.sep):
                raise FetchError(f"external_data local_data_path {item['local_data_path']!r} leaves /app/data")
            fetch(item["url"], destination, item.get("sha256"))
    except FetchError as exc:
        sys.stderr.write(f"pack: {exc}\n")  # the build log is where this is read
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
