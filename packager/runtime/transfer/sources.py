"""Turn a manifest entry into a Source: something that opens a byte range as a readable Body.

    Source.open(start, end) -> Body      # end exclusive
    Body.start, Body.end                 # what the body really delivers (a server that ignores
                                         # Range answers 0..size)
    Body.readinto(memoryview) -> int     # 0 = the server closed early
    Body.close(complete)                 # complete=False poisons the connection

URLs: hf -> `{HF_ENDPOINT or https://huggingface.co}/{repo}/resolve/{resolved}/{path}`, rebuilt
here at run time; https -> `source.path` when it is an absolute URL, else
`{source.endpoint or source.repo}/{source.path}`; s3 -> GetObject on bucket `repo`, key `path`;
gcs -> media download of bucket `repo`, object `path`. azure is not supported yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, urlsplit

from packager import constants

from ..manifest import Entry
from . import credentials
from .errors import PermanentError
from .gcs_source import gcs_media_url, token_provider
from .http_pool import ConnectionPool
from .http_source import HttpSource
from .s3_source import S3ClientFactory, S3Source
from .settings import TransferSettings


class Body(Protocol):
    start: int
    end: int

    def readinto(self, buf: memoryview) -> int: ...

    def read_ready(self, buf: memoryview) -> int:
        """Bytes already received, without waiting (0: none, or not supported)."""
        ...

    def close(self, complete: bool) -> None: ...


class Source(Protocol):
    description: str
    ranges_known: bool  # True: every server answers Range requests (object stores)

    def open(self, start: int, end: int) -> Body: ...


def describe(entry: Entry) -> str:
    s = entry.source
    if s.kind == "hf":
        return f"hf://{s.repo}@{entry.revision.resolved[:12]}/{s.path}"
    if s.kind in ("s3", "gcs"):
        return f"{'gs' if s.kind == 'gcs' else 's3'}://{s.repo}/{s.path}"
    return https_url(entry) if s.kind == "https" else f"{s.kind}://{s.repo}/{s.path}"


def hf_endpoint(env: Mapping[str, str]) -> str:
    return (env.get(constants.HF_ENDPOINT) or constants.DEFAULT_HF_ENDPOINT).rstrip("/")


def hf_url(entry: Entry, env: Mapping[str, str]) -> str:
    s = entry.source
    return f"{hf_endpoint(env)}/{s.repo}/resolve/{quote(entry.revision.resolved, safe='')}/" \
           f"{quote(s.path, safe='/')}"


def https_url(entry: Entry) -> str:
    s = entry.source
    if s.path.startswith(("https://", "http://")):
        return s.path
    base = (s.endpoint or s.repo).rstrip("/")
    return f"{base}/{quote(s.path.lstrip('/'), safe='/')}"


@dataclass
class SourceFactory:
    env: Mapping[str, str]
    secrets_dir: str
    settings: TransferSettings
    pool: ConnectionPool

    def __post_init__(self) -> None:
        self._s3 = S3ClientFactory(self.env, self.settings.workers,
                                   self.settings.connect_timeout, self.settings.stall_timeout)

    def _hint(self, entry: Entry, fallback: str = "") -> str:
        if entry.secret_name:
            return (f"; check secret {entry.secret_name!r} (file {self.secrets_dir}/"
                    f"{entry.secret_name} or env {constants.TRUSS_SECRET_PREFIX}{entry.secret_name})")
        return fallback

    def make(self, entry: Entry) -> Source:
        kind = entry.source.kind
        if kind == "hf":
            token = credentials.hf_token(entry.secret_name, self.secrets_dir, self.env)
            return HttpSource(
                hf_url(entry, self.env), entry.size, self.pool, description=describe(entry),
                token=(lambda: token) if token else None,
                token_host=urlsplit(hf_endpoint(self.env)).netloc,
                auth_hint=self._hint(entry, "; set HF_TOKEN or declare the repo's secret"),
                max_redirects=self.settings.max_redirects,
            )
        if kind == "https":
            token = credentials.read_secret(entry.secret_name, self.secrets_dir, self.env) \
                if entry.secret_name else None
            return HttpSource(
                https_url(entry), entry.size, self.pool, description=describe(entry),
                token=(lambda: token) if token else None, auth_hint=self._hint(entry),
                max_redirects=self.settings.max_redirects,
            )
        if kind == "s3":
            creds = credentials.s3_credentials(entry.secret_name, self.secrets_dir, self.env)
            client = self._s3.client(creds, entry.source.region)
            return S3Source(client, entry.source.repo, entry.source.path, entry.size,
                            auth_hint=self._hint(entry))
        if kind == "gcs":
            info = credentials.gcs_service_account(entry.secret_name, self.secrets_dir, self.env)
            url = gcs_media_url(self.env, entry.source.repo, entry.source.path,
                                entry.revision.resolved)
            source = HttpSource(
                url, entry.size, self.pool, description=describe(entry),
                token=token_provider(info), auth_hint=self._hint(entry),
                max_redirects=self.settings.max_redirects,
            )
            source.ranges_known = True
            return source
        raise PermanentError(f"{kind} sources are not supported by the transfer engine yet")
