"""Weight sources: one model_cache entry or `weights:` source -> pinned manifest entries.

    resolve_source(spec, credentials) -> list[Entry]

dispatches on the entry's repo_id prefix and kind (truss-compat.md §6.1): `owner/name` -> the
Hugging Face hub (sources.hf), `s3://` -> S3 (sources.s3), `gs://` -> GCS (sources.gcs),
https:// (weights only) -> one file (sources.https); `azure://` is not supported yet. Every failure
a user can fix is a PlanError naming the entry.
"""

from __future__ import annotations

from packager.errors import PlanError
from packager.plan.sources.credentials import Credentials, S3Credentials
from packager.runtime.secret_lookup import FoundSecret
from packager.plan.sources.layout import HF_BAKE_CACHE_ROOT, hf_cache_root_for
from packager.plan.sources.retry import DEFAULT_RETRY, RetryPolicy
from packager.plan.sources.spec import SourceSpec, source_kind, weights_spec
from packager.runtime.manifest import Entry

__all__ = [
    "Credentials",
    "FoundSecret",
    "HF_BAKE_CACHE_ROOT",
    "RetryPolicy",
    "S3Credentials",
    "SourceSpec",
    "hf_cache_root_for",
    "resolve_source",
    "source_kind",
    "weights_spec",
]


def resolve_source(
    spec: SourceSpec,
    credentials: Credentials,
    *,
    hf_cache_root: str = HF_BAKE_CACHE_ROOT,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> list[Entry]:
    """Resolve one entry into manifest entries sorted by destination.

    hf_cache_root: where bake mode puts HF repos (hf_cache_root_for() derives it from the
    model's environment_variables). retry: policy for transient hub errors.
    """
    kind = source_kind(spec)
    # Imported per kind so a plan with only HF entries never imports boto3 or google-cloud.
    if kind == "hf":
        from packager.plan.sources.hf import resolve_hf

        return resolve_hf(spec, credentials, hf_cache_root=hf_cache_root, retry=retry)
    if kind == "s3":
        from packager.plan.sources.s3 import resolve_s3

        return resolve_s3(spec, credentials)
    if kind == "gcs":
        from packager.plan.sources.gcs import resolve_gcs

        return resolve_gcs(spec, credentials)
    if kind == "https":
        from packager.plan.sources.https import resolve_https

        return resolve_https(spec, credentials, retry=retry)
    raise PlanError(
        f"{spec.where}: {kind} sources are not supported by pack yet",
        hint="copy the weights to an s3://, gs:// or Hugging Face repo",
    )
