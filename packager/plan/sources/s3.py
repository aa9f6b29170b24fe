"""S3 prefixes: list, filter, stat each chosen object, pin it.

ListObjectsV2 gives keys and sizes; a HEAD per chosen object (ChecksumMode=ENABLED) gives what
pins it: VersionId on versioned buckets, else ETag + Last-Modified; and the best verifiable hash:
a full-object ChecksumSHA256, else a single-part ETag (an md5 of the bytes unless the object is
SSE-KMS / SSE-C encrypted), else "none" (multipart ETags `…-N` hash the parts, not the file).
The HEAD also proves the credentials can read objects, not just list them.

Credentials: the secret JSON (either Truss key set), then AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
then the AWS_PROFILE profile; otherwise requests are unsigned (public buckets). The endpoint is
AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else AWS. botocore's "standard" retry mode retries
throttling and 5xx only, so 403/404 fail at once (§7 #12).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NoReturn

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, NoCredentialsError

from packager.constants import AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3
from packager.errors import PlanError
from packager.plan.sources.credentials import Credentials, S3Credentials
from packager.plan.sources.layout import bucket_bake_destination
from packager.plan.sources.listing import RemoteFile, SourceRef, select, to_entries
from packager.plan.sources.spec import BucketLocation, SourceSpec, bucket_location, require_prefix
from packager.runtime.manifest import Digest, Entry

MD5_HEX = re.compile(r"[0-9a-f]{32}")
HEAD_WORKERS = 16
DENIED = {"AccessDenied", "AllAccessDisabled", "403", "AccountProblem"}
REJECTED = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "401"}


@dataclass(frozen=True)
class S3Access:
    endpoint: str | None  # None: AWS itself
    region: str
    credentials: S3Credentials | None
    profile: str | None = None
    max_attempts: int = 4  # AWS_MAX_ATTEMPTS overrides, as in every AWS SDK

    @property
    def who(self) -> str:
        if self.credentials is not None:
            return f"the credentials from {self.credentials.origin}"
        if self.profile:
            return f"the AWS profile '{self.profile}' (AWS_PROFILE)"
        return "no credentials (unsigned requests)"


@dataclass(frozen=True)
class ListedObject:
    key: str
    path: str  # key relative to the prefix
    size: int


def s3_access(spec: SourceSpec, credentials: Credentials) -> S3Access:
    env = credentials.env
    found = credentials.s3(spec.runtime_secret_name)
    region = (
        (found.region if found else None)
        or env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    endpoint = env.get(AWS_ENDPOINT_URL_S3) or env.get(AWS_ENDPOINT_URL) or None
    profile = env.get("AWS_PROFILE") if found is None else None
    attempts = int(env.get("AWS_MAX_ATTEMPTS") or 4)
    return S3Access(endpoint, region, found, profile, max(attempts, 1))


def make_client(access: S3Access) -> Any:
    config = Config(
        retries={"max_attempts": access.max_attempts, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
        signature_version=UNSIGNED if access.credentials is None and not access.profile else None,
    )
    found = access.credentials
    # A private Session: never the process-wide default, never a change to os.environ (§7 #21).
    session = boto3.session.Session(
        aws_access_key_id=found.access_key_id if found else None,
        aws_secret_access_key=found.secret_access_key if found else None,
        aws_session_token=found.session_token if found else None,
        region_name=access.region,
        profile_name=access.profile,
    )
    return session.client("s3", endpoint_url=access.endpoint, config=config)


def resolve_s3(spec: SourceSpec, credentials: Credentials, *, client: Any = None) -> list[Entry]:
    location = bucket_location(spec, "s3")
    require_prefix(spec, location)
    access = s3_access(spec, credentials)
    try:
        client = client or make_client(access)
        objects = list_objects(client, location)
        if not objects:
            raise PlanError(
                f"{spec.where}: no object under '{location.uri}'",
                hint="check the bucket and key prefix (the prefix is a folder: "
                "s3://b/models/bert holds models/bert/<files>)",
            )
        chosen = select(spec, objects, lambda o: o.path, f"'{location.uri}'")
        with ThreadPoolExecutor(max_workers=min(HEAD_WORKERS, len(chosen))) as pool:
            heads = list(pool.map(lambda o: _head(client, location.bucket, o.key), chosen))
    except (ClientError, BotoCoreError) as exc:
        _raise_plan_error(exc, spec, location, access)
    files = [
        RemoteFile(
            o.path, o.key, int(h.get("ContentLength", o.size)), object_digest(h), pinned_revision(h)
        )
        for o, h in zip(chosen, heads, strict=True)
    ]
    ref = SourceRef(kind="s3", repo=location.bucket, endpoint=access.endpoint, region=access.region)
    return to_entries(spec, ref, files, lambda f: bucket_bake_destination(location.bucket, f.key))


def list_objects(client: Any, location: BucketLocation) -> list[ListedObject]:
    objects = []
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=location.bucket, Prefix=location.prefix
    )
    for page in pages:
        for item in page.get("Contents", []):
            key = item["Key"]
            path = location.relative_path(key)
            # Keys ending in '/' are folder markers made by consoles, not files.
            if path is not None and path and not key.endswith("/"):
                objects.append(ListedObject(key, path, int(item.get("Size", 0))))
    return objects


def _head(client: Any, bucket: str, key: str) -> Mapping[str, Any]:
    head: Mapping[str, Any] = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    return head


def object_digest(head: Mapping[str, Any]) -> Digest:
    """Best verifiable hash from a HeadObject response (pure)."""
    checksum = head.get("ChecksumSHA256")
    if (
        checksum
        and "-" not in checksum
        and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT"
    ):
        return Digest("sha256", base64.b64decode(checksum).hex())
    etag = str(head.get("ETag", "")).strip('"').lower()
    # With SSE-KMS or SSE-C the ETag is not an md5 of the plaintext.
    encrypted = head.get("ServerSideEncryption") == "aws:kms" or head.get("SSECustomerAlgorithm")
    if MD5_HEX.fullmatch(etag) and not encrypted:
        return Digest("md5", etag)
    return Digest("none", "")


def pinned_revision(head: Mapping[str, Any]) -> str:
    version = head.get("VersionId")
    if version and version != "null":
        return str(version)
    etag = str(head.get("ETag", "")).strip('"')
    modified = head.get("LastModified")
    return f"{etag}@{modified.isoformat() if modified is not None else ''}"


def _raise_plan_error(
    exc: Exception, spec: SourceSpec, location: BucketLocation, access: S3Access
) -> NoReturn:
    where = spec.where  # names the entry and its URI already
    at = access.endpoint or "AWS"
    secret_help = (
        "put credentials in the secret (JSON with access_key_id, secret_access_key, region) or "
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            raise PlanError(
                f"{where}: bucket '{location.bucket}' does not exist at {at}",
                hint="check the bucket name (and AWS_ENDPOINT_URL for an S3-compatible store)",
            ) from None
        if code in DENIED:
            raise PlanError(
                f"{where}: access denied with {access.who}",
                hint=f"the credentials need s3:ListBucket and s3:GetObject; {secret_help}",
            ) from None
        if code in REJECTED:
            raise PlanError(
                f"{where}: S3 rejected {access.who} ({code})",
                hint="the key is wrong, expired or revoked; replace it",
            ) from None
        if code in ("PermanentRedirect", "301", "AuthorizationHeaderMalformed"):
            raise PlanError(
                f"{where}: the bucket is not in region {access.region} ({code})",
                hint="set region in the secret JSON, or AWS_REGION",
            ) from None
        if code in ("404", "NoSuchKey"):
            raise PlanError(
                f"{where}: an object disappeared while planning ({code})",
                hint="the prefix is being written to; plan again when it is complete",
            ) from None
        raise PlanError(
            f"{where}: S3 answered {code or status} at {at}",
            hint="try again later; check AWS_ENDPOINT_URL",
        ) from None
    if isinstance(exc, ConnectionError):
        raise PlanError(
            f"{where}: cannot reach {at} ({exc})",
            hint="check the network, proxy settings and AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3",
        ) from None
    if isinstance(exc, NoCredentialsError):
        raise PlanError(f"{where}: the AWS profile gave no credentials", hint=secret_help) from None
    raise exc  # anything else is a bug in pack, not a source problem
