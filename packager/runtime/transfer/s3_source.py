"""Ranged GetObject on S3 (and S3-compatible endpoints such as moto or MinIO).

boto3 is imported lazily: the image installs it only when the manifest has s3 entries. botocore's
own retries are switched off so the engine's retry policy (per range, with jitter, fail-fast on
403/404) is the only one in play.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol

from packager import constants

from .credentials import S3Credentials
from .errors import PermanentError, TransientError

_PERMANENT_CODES = {
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchKey", "NoSuchBucket",
    "NoSuchVersion", "InvalidRange", "ExpiredToken", "InvalidToken", "AllAccessDisabled",
}


class _StreamingBody(Protocol):
    """botocore's StreamingBody (boto3 and botocore carry no type information)."""

    def read(self, amt: int) -> bytes: ...

    def close(self) -> None: ...


class _S3Client(Protocol):
    """The one call of boto3's S3 client made here; the response's "Body" is a _StreamingBody."""

    def get_object(self, *, Bucket: str, Key: str, Range: str) -> dict[str, Any]: ...


class S3ClientFactory:
    """One client per credential set; boto3 clients are thread-safe and pool connections."""

    def __init__(self, env: Mapping[str, str], workers: int, connect_timeout: float,
                 stall_timeout: float):
        self._env, self._workers = env, workers
        self._timeouts = (connect_timeout, stall_timeout)
        self._clients: dict[tuple[S3Credentials, str], _S3Client] = {}
        self._lock = threading.Lock()

    def client(self, creds: S3Credentials, region: str | None) -> _S3Client:
        region = region or creds.region or self._env.get(constants.AWS_REGION) or \
            self._env.get(constants.AWS_DEFAULT_REGION) or "us-east-1"
        key = (creds, region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._make(creds, region)
            return self._clients[key]

    def _make(self, creds: S3Credentials, region: str) -> _S3Client:
        try:
            import boto3
            from botocore import UNSIGNED
            from botocore.config import Config
        except ImportError:
            raise PermanentError("s3 source needs boto3, which is not installed") from None
        endpoint = self._env.get(constants.AWS_ENDPOINT_URL_S3) or \
            self._env.get(constants.AWS_ENDPOINT_URL) or None
        if not creds.explicit and self._env.get("AWS_ACCESS_KEY_ID"):
            # The environment mapping given to fetch() wins over the process environment boto3
            # would read by itself (they are the same unless a caller passed its own env).
            creds = S3Credentials(
                self._env.get("AWS_ACCESS_KEY_ID"), self._env.get("AWS_SECRET_ACCESS_KEY"),
                self._env.get("AWS_SESSION_TOKEN") or None, creds.region,
            )
        if creds.explicit:
            session = boto3.session.Session(
                aws_access_key_id=creds.access_key_id,
                aws_secret_access_key=creds.secret_access_key,
                aws_session_token=creds.session_token,
                region_name=region,
            )
        else:
            session = boto3.session.Session(region_name=region)
        config = Config(
            connect_timeout=self._timeouts[0],
            read_timeout=self._timeouts[1],
            retries={"total_max_attempts": 1},
            max_pool_connections=max(10, self._workers),
        )
        if not creds.explicit and session.get_credentials() is None:
            config = config.merge(Config(signature_version=UNSIGNED))  # public bucket
        client: _S3Client = session.client("s3", endpoint_url=endpoint, config=config)
        return client


class S3Body:
    def __init__(self, stream: _StreamingBody, start: int, end: int, where: str):
        self._stream, self.start, self.end, self._where = stream, start, end, where

    def readinto(self, buf: memoryview) -> int:
        try:
            data = self._stream.read(len(buf))
        except Exception as exc:  # noqa: BLE001 - botocore/urllib3 raise unrelated types mid-body
            raise TransientError(f"{self._where}: {type(exc).__name__}: {exc}") from None
        buf[: len(data)] = data
        return len(data)

    def read_ready(self, buf: memoryview) -> int:
        return 0  # botocore's stream cannot say what has arrived: a hand-off refetches it

    def close(self, complete: bool) -> None:
        self._stream.close()


class S3Source:
    ranges_known = True

    def __init__(self, client: _S3Client, bucket: str, key: str, size: int, auth_hint: str = ""):
        self._client, self._bucket, self._key, self.size = client, bucket, key, size
        self.description = f"s3://{bucket}/{key}"
        self._auth_hint = auth_hint

    def open(self, start: int, end: int) -> S3Body:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            resp = self._client.get_object(
                Bucket=self._bucket, Key=self._key, Range=f"bytes={start}-{end - 1}"
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            message = f"{self.description}: {code or status} {error.get('Message', '')}".rstrip()
            if code in _PERMANENT_CODES or status in (401, 403, 404):
                raise PermanentError(message + self._auth_hint) from None
            raise TransientError(message) from None
        except (BotoCoreError, OSError) as exc:
            raise TransientError(f"{self.description}: {type(exc).__name__}: {exc}") from None
        total = str(resp.get("ContentRange", "")).rpartition("/")[2]
        if total.isdigit() and int(total) != self.size:
            resp["Body"].close()
            raise PermanentError(f"{self.description}: object has {total} bytes, manifest says "
                                 f"{self.size} (the object changed?)")
        if not resp.get("ContentRange") and start != 0:
            resp["Body"].close()
            raise TransientError(f"{self.description}: ranged GET answered without Content-Range")
        return S3Body(resp["Body"], start, end if resp.get("ContentRange") else self.size,
                      self.description)
