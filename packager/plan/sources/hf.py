"""Hugging Face repos: pin the revision, list files with sizes and hashes, place them.

One `model_info(revision, files_metadata=True)` call gives the commit sha and every file with its
size and hash in the same response, so the listing is exactly the pinned commit (Truss bake mode
lists `main` whatever the revision says, §7 #6). Hashes are the ones a download can be checked
against: LFS files -> sha256 of the content; git-stored files -> git blob sha1 ("git-sha1").

The endpoint comes from HF_ENDPOINT in the credentials' environment snapshot and is passed to
HfApi explicitly, because huggingface_hub reads HF_ENDPOINT once, at import (§7 #20). Tokens come
only from the credentials provider; huggingface_hub's own token lookup is switched off
(token=False) so an error can say exactly which token was used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import (
    FileMetadataError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from packager.constants import DEFAULT_HF_ENDPOINT, HF_ENDPOINT
from packager.errors import PlanError
from packager.plan.sources.credentials import Credentials
from packager.runtime.secret_lookup import FoundSecret
from packager.plan.sources.layout import hf_bake_destination
from packager.plan.sources.listing import RemoteFile, SourceRef, select, to_entries
from packager.plan.sources.retry import (
    DEFAULT_RETRY,
    RetryPolicy,
    call_with_retries,
    is_transport_error,
)
from packager.plan.sources.spec import SourceSpec
from packager.runtime.manifest import Digest, Entry

COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
REQUEST_TIMEOUT = 60.0  # seconds per API call; a stalled hub must not hang the plan


@dataclass(frozen=True)
class HubAccess:
    """Where and as whom the plan talks to the hub."""

    endpoint: str
    token: FoundSecret | None

    @property
    def who(self) -> str:
        return f"the token from {self.token.origin}" if self.token else "no token (anonymous)"


def hub_access(spec: SourceSpec, credentials: Credentials) -> HubAccess:
    endpoint = (credentials.env.get(HF_ENDPOINT) or DEFAULT_HF_ENDPOINT).rstrip("/")
    return HubAccess(endpoint, credentials.hf_token(spec.runtime_secret_name))


def resolve_hf(
    spec: SourceSpec,
    credentials: Credentials,
    *,
    hf_cache_root: str,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> list[Entry]:
    access = hub_access(spec, credentials)
    token: str | bool = access.token.value if access.token else False
    api = HfApi(endpoint=access.endpoint, token=token)
    revision = spec.revision or None  # None: the repo's default branch
    try:
        info = call_with_retries(
            lambda: api.model_info(
                spec.repo_id, revision=revision, files_metadata=True, timeout=REQUEST_TIMEOUT
            ),
            is_transient,
            retry,
        )
    except Exception as exc:
        error = explain(exc, spec, access, credentials, api)
        if error is None:
            raise  # not a source problem: a bug in pack, reported as such by the CLI
        raise error from None
    sha = info.sha or ""
    if not COMMIT_SHA.fullmatch(sha):
        raise PlanError(
            f"{spec.where}: {access.endpoint} did not report a commit sha for '{revision}'",
            hint="HF_ENDPOINT must point at a Hugging Face hub (or a faithful mirror)",
        )
    siblings = info.siblings or []
    files = [remote_file(spec, s.rfilename, s.size, s.blob_id, s.lfs, sha) for s in siblings]
    if not files:
        raise PlanError(
            f"{spec.where}: the repo has no files at {sha}",
            hint="check the revision; an empty repo cannot provide weights",
        )
    chosen = select(spec, files, lambda f: f.path, f"repo '{spec.repo_id}' at {sha[:12]}")
    if info.gated:
        # The file list of a gated repo is public; only a download proves access. One HEAD now
        # beats a build that fails after the image's other layers are done.
        url = hf_hub_url(spec.repo_id, chosen[0].key, revision=sha, endpoint=access.endpoint)
        try:
            call_with_retries(lambda: get_hf_file_metadata(url, token=token), is_transient, retry)
        except Exception as exc:
            error = explain(exc, spec, access, credentials, api)
            if error is None:
                raise  # not a source problem: a bug in pack, reported as such by the CLI
            raise error from None
    ref = SourceRef(kind="hf", repo=spec.repo_id, endpoint=access.endpoint)
    return to_entries(
        spec, ref, chosen, lambda f: hf_bake_destination(hf_cache_root, spec.repo_id, sha, f.key)
    )


def remote_file(
    spec: SourceSpec, path: str, size: int | None, blob_id: str | None, lfs: object, sha: str
) -> RemoteFile:
    """A sibling of model_info(files_metadata=True) -> RemoteFile (lfs is a BlobLfsInfo or None)."""
    lfs_sha256 = getattr(lfs, "sha256", None)
    if lfs_sha256:
        return RemoteFile(
            path, path, int(getattr(lfs, "size", size) or 0), Digest("sha256", lfs_sha256), sha
        )
    if size is None or not blob_id:
        raise PlanError(
            f"{spec.where}: the hub did not report the size and hash of '{path}'",
            hint="HF_ENDPOINT must implement /api/models/<repo>/revision/<rev>?blobs=true "
            "like huggingface.co (a plain file server or old mirror does not)",
        )
    return RemoteFile(path, path, int(size), Digest("git-sha1", blob_id), sha)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        return status == 429 or status >= 500
    return is_transport_error(exc)


def explain(
    exc: Exception, spec: SourceSpec, access: HubAccess, credentials: Credentials, api: HfApi
) -> PlanError | None:
    """Turn a huggingface_hub failure into a PlanError naming the repo, the cause and the fix."""
    repo, hub = spec.repo_id, access.endpoint
    where = spec.where  # names the entry and the repo id already
    places = credentials.where_to_put(spec.runtime_secret_name)
    provide = f"provide a token with read access: put it in {places}, or set HF_TOKEN"
    if isinstance(exc, HFValidationError):
        return PlanError(
            f"{spec.where}: '{repo}' is not a valid Hugging Face repo id ({exc})",
            hint="write it as <owner>/<name>, or use an s3:// or gs:// URI",
        )
    if isinstance(exc, RevisionNotFoundError):
        return PlanError(
            f"{where}: revision '{spec.revision}' does not exist in the repo at {hub}",
            hint=f"use a branch, tag or full commit sha of the repo{_refs_summary(api, repo)}",
        )
    if isinstance(exc, GatedRepoError):
        if access.token is None:
            return PlanError(f"{where}: the repo is gated and no token was found", hint=provide)
        return PlanError(
            f"{where}: the repo is gated and {access.who} has not been granted access",
            hint=f"request access at {hub}/{repo} with the account owning that token",
        )
    if isinstance(exc, RepositoryNotFoundError):
        if access.token is None:
            return PlanError(
                f"{where}: no such Hugging Face repo at {hub} (asked anonymously: a private "
                "repo answers the same)",
                hint=f"check the repo id; if the repo is private, {provide}",
            )
        return PlanError(
            f"{where}: no such Hugging Face repo at {hub}, or {access.who} cannot read it",
            hint="check the repo id, and that the token's account can see the repo",
        )
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            if access.token is None:
                return PlanError(f"{where}: {hub} requires authentication", hint=provide)
            return PlanError(
                f"{where}: {hub} rejected {access.who} (401: invalid credentials)",
                hint=f"the token is wrong, expired or revoked; replace it in {access.token.origin}",
            )
        if status == 403:
            return PlanError(
                f"{where}: {access.who} is not allowed to read the repo (403)",
                hint="a fine-grained token needs read access to this repo; use another token",
            )
        return PlanError(
            f"{where}: {hub} answered HTTP {status}"
            + (" after retries" if is_transient(exc) else ""),
            hint="the hub may be down; try again later, or check HF_ENDPOINT",
        )
    if isinstance(exc, FileMetadataError):
        return PlanError(
            f"{where}: {hub} does not answer like a Hugging Face hub ({exc})",
            hint="check HF_ENDPOINT",
        )
    if is_transport_error(exc):
        return PlanError(
            f"{where}: cannot reach {hub} ({type(exc).__name__}: {exc})",
            hint="check the network, proxy settings (HTTPS_PROXY/NO_PROXY) and HF_ENDPOINT",
        )
    return None


def _refs_summary(api: HfApi, repo_id: str) -> str:
    """'; it has branches: main; tags: v1' or '' when the refs cannot be listed."""
    try:
        refs = api.list_repo_refs(repo_id)
    except Exception:  # noqa: BLE001 - only decorates an error being reported: nothing may replace that error
        return ""
    branches = ", ".join(sorted(b.name for b in refs.branches)) or "none"
    tags = ", ".join(sorted(t.name for t in refs.tags)) or "none"
    return f"; it has branches: {branches}; tags: {tags}"
