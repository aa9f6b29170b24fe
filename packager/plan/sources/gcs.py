"""GCS prefixes: list, filter, pin each object by generation.

The listing already carries everything: size, generation (pins the object version) and the
hashes. md5Hash (base64) is preferred; composite objects have none, so crc32c (base64, 4 bytes
big-endian) is the fallback; hex in the manifest either way.

Client: STORAGE_EMULATOR_HOST -> that endpoint, anonymous (an emulator checks no credentials, and
real ones would try to reach Google's token service); else a service-account JSON secret; else
GOOGLE_APPLICATION_CREDENTIALS; else anonymous (public buckets).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import google.auth
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import GoogleAuthError
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account

from packager.constants import STORAGE_EMULATOR_HOST
from packager.errors import PlanError
from packager.plan.sources.credentials import Credentials
from packager.plan.sources.layout import bucket_bake_destination
from packager.plan.sources.listing import RemoteFile, SourceRef, select, to_entries
from packager.plan.sources.retry import is_transport_error
from packager.plan.sources.spec import BucketLocation, SourceSpec, bucket_location, require_prefix
from packager.runtime.manifest import Digest, Entry

GCS_ENDPOINT = "https://storage.googleapis.com"
READ_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
# Transient errors are retried by the library, within this budget instead of its 120 s default.
LIST_RETRY = DEFAULT_RETRY.with_timeout(30.0)


@dataclass(frozen=True)
class GcsAccess:
    endpoint: str
    who: str


def make_client(spec: SourceSpec, credentials: Credentials) -> tuple[Any, GcsAccess]:
    env = credentials.env
    emulator = env.get(STORAGE_EMULATOR_HOST)
    if emulator:
        endpoint = emulator if "://" in emulator else f"http://{emulator}"
        client = storage.Client(
            project="pack-plan",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]  # google-auth leaves it unannotated
            client_options={"api_endpoint": endpoint},
        )
        return client, GcsAccess(endpoint, "no credentials (storage emulator)")
    account = credentials.gcs_service_account(spec.runtime_secret_name)
    if account is not None:
        info, origin = account
        # google-auth ships py.typed but leaves this unannotated.
        creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[READ_SCOPE]
        )
        client = storage.Client(project=info.get("project_id"), credentials=creds)
        return client, GcsAccess(GCS_ENDPOINT, f"the service account from {origin}")
    path = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if path:
        # google-auth ships py.typed but leaves this unannotated.
        creds, project = google.auth.load_credentials_from_file(  # type: ignore[no-untyped-call]
            path, scopes=[READ_SCOPE]
        )
        client = storage.Client(project=project, credentials=creds)
        return client, GcsAccess(GCS_ENDPOINT, f"GOOGLE_APPLICATION_CREDENTIALS ({path})")
    return storage.Client.create_anonymous_client(), GcsAccess(
        GCS_ENDPOINT, "no credentials (anonymous)"
    )


def resolve_gcs(spec: SourceSpec, credentials: Credentials, *, client: Any = None) -> list[Entry]:
    location = bucket_location(spec, "gs")
    require_prefix(spec, location)
    access = GcsAccess(GCS_ENDPOINT, "the given client")
    try:
        if client is None:
            client, access = make_client(spec, credentials)
        blobs = list(
            client.list_blobs(
                location.bucket, prefix=location.prefix or None, retry=LIST_RETRY, timeout=30
            )
        )
    except Exception as exc:
        error = _plan_error(exc, spec, location, access)
        if error is None:
            raise  # anything else is a bug in pack, not a source problem
        raise error from None
    files = [
        RemoteFile(
            path,
            blob.name,
            int(blob.size or 0),
            object_digest(blob.md5_hash, blob.crc32c),
            str(blob.generation),
        )
        for blob in blobs
        if (path := location.relative_path(blob.name)) and not blob.name.endswith("/")
    ]
    if not files:
        raise PlanError(
            f"{spec.where}: no object under '{location.uri}'",
            hint="check the bucket and prefix (the prefix is a folder: gs://b/models/bert holds "
            "models/bert/<files>)",
        )
    chosen = select(spec, files, lambda f: f.path, f"'{location.uri}'")
    ref = SourceRef(kind="gcs", repo=location.bucket, endpoint=access.endpoint)
    return to_entries(spec, ref, chosen, lambda f: bucket_bake_destination(location.bucket, f.key))


def object_digest(md5_b64: str | None, crc32c_b64: str | None) -> Digest:
    """GCS base64 hashes -> hex Digest; md5 preferred (pure)."""
    if md5_b64:
        return Digest("md5", base64.b64decode(md5_b64).hex())
    if crc32c_b64:
        return Digest("crc32c", base64.b64decode(crc32c_b64).hex())
    return Digest("none", "")


def _plan_error(
    exc: Exception, spec: SourceSpec, location: BucketLocation, access: GcsAccess
) -> PlanError | None:
    """The PlanError a user can act on, or None when the failure is not the source's."""
    where = spec.where  # names the entry and its URI already
    secret_help = "put a service-account JSON in the secret, or set GOOGLE_APPLICATION_CREDENTIALS"
    if isinstance(exc, gexc.NotFound):
        return PlanError(
            f"{where}: bucket '{location.bucket}' does not exist at {access.endpoint}",
            hint="check the bucket name (and STORAGE_EMULATOR_HOST if you use an emulator)",
        )
    if isinstance(exc, (gexc.Forbidden, gexc.Unauthorized)):
        return PlanError(
            f"{where}: access denied with {access.who} ({exc.code})",
            hint=f"the account needs storage.objects.list and storage.objects.get; {secret_help}",
        )
    if isinstance(exc, GoogleAuthError):
        return PlanError(
            f"{where}: the GCS credentials were refused or unusable ({exc})", hint=secret_help
        )
    if isinstance(exc, gexc.GoogleAPIError):
        return PlanError(f"{where}: GCS answered {exc}", hint="try again later")
    if is_transport_error(exc):
        return PlanError(
            f"{where}: cannot reach {access.endpoint} ({type(exc).__name__})",
            hint="check the network, proxy settings and STORAGE_EMULATOR_HOST",
        )
    return None
