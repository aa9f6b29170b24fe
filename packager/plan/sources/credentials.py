"""Where the plan finds credentials on the build host: the environment or a local secrets dir.

Never config.yaml (truss-compat.md §7 #1). A secret named N is looked up as

    1. the file <secrets dir>/N            (PACK_SECRETS_DIR, or the dir the caller passes)
    2. the env var TRUSS_SECRET_N
    3. HF only: HF_TOKEN, then HUGGING_FACE_HUB_TOKEN

The first two are packager.runtime.secret_lookup, the order the image reads secrets by too. Values
are stripped (a trailing newline is not part of a token); unset ones count as missing (§2.8).
Every found value carries `origin`, a description safe to print: error messages name where a
credential came from, never its value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.constants import HF_TOKEN, HUGGING_FACE_HUB_TOKEN, PACK_SECRETS_DIR
from packager.runtime import secret_lookup
from packager.runtime.secret_lookup import FoundSecret

# Both key sets Truss uses for S3 (bake-mode data/s3_credentials.json, volume-mode secret JSON).
S3_KEY_SETS = (
    ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region"),
    ("access_key_id", "secret_access_key", "session_token", "region"),
)


@dataclass(frozen=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None
    region: str | None
    origin: str

    def __repr__(self) -> str:
        return f"S3Credentials(origin={self.origin!r}, region={self.region!r})"


@dataclass(frozen=True)
class Credentials:
    """A snapshot of the host environment and secrets dir; sources read endpoints from it too."""

    env: Mapping[str, str]
    secrets_dir: Path | None = None

    def __repr__(self) -> str:  # the env snapshot holds tokens: keep it out of logs
        return f"Credentials(secrets_dir={self.secrets_dir!r}, env=<{len(self.env)} variables>)"

    @classmethod
    def from_environment(
        cls, env: Mapping[str, str] | None = None, secrets_dir: str | Path | None = None
    ) -> Credentials:
        snapshot = dict(os.environ if env is None else env)
        directory = secrets_dir or snapshot.get(PACK_SECRETS_DIR) or None
        return cls(env=snapshot, secrets_dir=Path(directory) if directory else None)

    def secret(self, name: str | None, *, verbatim: bool = False) -> FoundSecret | None:
        """The secret `name` from the secrets dir, then TRUSS_SECRET_<name>. verbatim: the value
        as written (a run hands it to the model, which strips what it uses as a credential);
        otherwise stripped, for use as a credential here."""
        if not name:
            return None  # an anonymous source
        found = secret_lookup.lookup(name, self.secrets_dir, self.env)
        if found is None or verbatim:
            return found
        return FoundSecret(found.value.strip(), found.origin)

    def hf_token(self, secret_name: str | None, *, verbatim: bool = False) -> FoundSecret | None:
        """A Hugging Face token: the named secret, then HF_TOKEN, then HUGGING_FACE_HUB_TOKEN."""
        return (self.secret(secret_name, verbatim=verbatim) or self._env(HF_TOKEN, verbatim)
                or self._env(HUGGING_FACE_HUB_TOKEN, verbatim))

    def where_to_put(self, secret_name: str | None) -> str:
        """Hint text: the places a missing secret would have been read from."""
        if not secret_name:
            return "a secret named by the source's auth_secret_name (then HF_TOKEN for Hugging Face)"
        return secret_lookup.places(secret_name, self.secrets_dir)

    def json_secret(self, name: str | None) -> tuple[dict[str, Any], str] | None:
        """The secret parsed as a JSON object, or None when absent or not JSON (e.g. an HF token
        under the default name hf_access_token, which S3/GCS entries share)."""
        found = self.secret(name)
        if found is None:
            return None
        try:
            doc = json.loads(found.value)
        except json.JSONDecodeError:
            return None
        return (doc, found.origin) if isinstance(doc, dict) else None

    def s3(self, secret_name: str | None) -> S3Credentials | None:
        """Secret JSON (either key set) first, then AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY."""
        secret = self.json_secret(secret_name)
        if secret is not None:
            doc, origin = secret
            for key_id, key_secret, token, region in S3_KEY_SETS:
                if doc.get(key_id) and doc.get(key_secret):
                    return S3Credentials(
                        doc[key_id], doc[key_secret], doc.get(token), doc.get(region), origin
                    )
        env_id = self.env.get("AWS_ACCESS_KEY_ID")
        env_secret = self.env.get("AWS_SECRET_ACCESS_KEY")
        if env_id and env_secret:
            return S3Credentials(
                env_id,
                env_secret,
                self.env.get("AWS_SESSION_TOKEN"),
                None,
                "env AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            )
        return None

    def gcs_service_account(self, secret_name: str | None) -> tuple[dict[str, Any], str] | None:
        secret = self.json_secret(secret_name)
        if secret is not None and secret[0].get("type") == "service_account":
            return secret
        return None

    def _env(self, name: str, verbatim: bool = False) -> FoundSecret | None:
        return self._found(self.env.get(name) or "", f"env {name}", verbatim)

    @staticmethod
    def _found(value: str, origin: str, verbatim: bool) -> FoundSecret | None:
        if secret_lookup.is_unset(value):
            return None
        return FoundSecret(value if verbatim else value.strip(), origin)
