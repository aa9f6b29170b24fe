"""Credential lookup: secret files, TRUSS_SECRET_<name>, then the conventional environment.

A named secret is read in the order of packager.runtime.secret_lookup (file `<secrets_dir>/<name>`,
then env `TRUSS_SECRET_<name>`). Values are stripped (they are used as credentials) and unset ones
count as missing. The environment is read from a snapshot and never modified.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packager import constants
from packager.runtime import secret_lookup

from .errors import PermanentError


def secrets_dir_from(explicit: str | None, env: Mapping[str, str]) -> str:
    return explicit or env.get(constants.PACK_SECRETS_DIR) or constants.SECRETS_DIR


def _clean(value: str | None) -> str | None:
    return None if value is None or secret_lookup.is_unset(value) else value.strip()


def read_secret(name: str, secrets_dir: str, env: Mapping[str, str]) -> str | None:
    """The secret's value, or None when it is defined nowhere."""
    if not secret_lookup.is_plain_name(name):
        raise PermanentError(f"secret name {name!r} is not a plain file name")
    found = secret_lookup.lookup(name, secrets_dir, env)
    return None if found is None else found.value.strip()


def hf_token(secret_name: str | None, secrets_dir: str, env: Mapping[str, str]) -> str | None:
    """HF token: the entry's secret, then HF_TOKEN, then HUGGING_FACE_HUB_TOKEN."""
    if secret_name:
        token = read_secret(secret_name, secrets_dir, env)
        if token:
            return token
    return _clean(env.get(constants.HF_TOKEN)) or _clean(env.get(constants.HUGGING_FACE_HUB_TOKEN))


@dataclass(frozen=True)
class S3Credentials:
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    region: str | None = None

    @property
    def explicit(self) -> bool:
        return bool(self.access_key_id and self.secret_access_key)


# Truss volume mode and Truss bake mode use different key sets for the same thing; accept both.
_S3_KEYSETS = (
    ("access_key_id", "secret_access_key", "session_token", "region"),
    ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region"),
)


def _secret_json(name: str, secrets_dir: str, env: Mapping[str, str]) -> dict[str, Any] | None:
    """A secret holding a JSON object (its values are the user's: checked where they are used)."""
    raw = read_secret(name, secrets_dir, env)
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError:
        raise PermanentError(f"secret {name!r} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise PermanentError(f"secret {name!r} must be a JSON object")
    return doc


def s3_credentials(secret_name: str | None, secrets_dir: str, env: Mapping[str, str]) -> S3Credentials:
    """Keys from the secret JSON when present; otherwise empty (boto3 then reads AWS_* env)."""
    doc = _secret_json(secret_name, secrets_dir, env) if secret_name else None
    if not doc:
        return S3Credentials()
    for key_id, secret, token, region in _S3_KEYSETS:
        if doc.get(key_id) and doc.get(secret):
            return S3Credentials(
                access_key_id=str(doc[key_id]).strip(),
                secret_access_key=str(doc[secret]).strip(),
                session_token=_clean(doc.get(token)),
                region=_clean(doc.get(region)),
            )
    raise PermanentError(
        f"secret {secret_name!r} has neither access_key_id/secret_access_key nor "
        "aws_access_key_id/aws_secret_access_key"
    )


def gcs_service_account(secret_name: str | None, secrets_dir: str, env: Mapping[str, str]) -> dict[str, Any] | None:
    return _secret_json(secret_name, secrets_dir, env) if secret_name else None
