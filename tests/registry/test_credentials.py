"""Credentials from the docker config or given explicitly (a temporary DOCKER_CONFIG, no engine)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from packager.errors import RegistryError
from packager.registry import Credentials, from_docker_config, resolve_credentials


def write_config(directory: Path, config: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    return path


def auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_auths_entries_by_host_and_legacy_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(
        tmp_path,
        {
            "auths": {
                "127.0.0.1:5000": {"auth": auth("pack", "pw:with:colons")},
                "https://index.docker.io/v1/": {"auth": auth("hubuser", "hubpw")},
                "ghcr.io": {"identitytoken": "tok-123"},
            }
        },
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    local = from_docker_config("127.0.0.1:5000")
    assert local == Credentials("pack", "pw:with:colons", source=local.source if local else "")
    assert local is not None and "config.json" in local.source
    hub = from_docker_config("docker.io")
    assert hub is not None and hub.username == "hubuser"
    token = from_docker_config("ghcr.io")
    assert token is not None and token.identity_token == "tok-123"
    assert token.auth_config("ghcr.io") == {"identitytoken": "tok-123", "serveraddress": "ghcr.io"}
    assert from_docker_config("other.example:5000") is None
    assert "pw:with:colons" not in repr(local)  # never in reprs or logs


def test_explicit_wins_and_needs_both_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, {"auths": {"r.io": {"auth": auth("cfg", "cfgpw")}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    explicit = resolve_credentials("r.io", username="me", password="mine")
    assert explicit is not None and (explicit.username, explicit.password, explicit.source) == ("me", "mine",
                                                                                                "explicit")
    configured = resolve_credentials("r.io")
    assert configured is not None and configured.username == "cfg"
    with pytest.raises(RegistryError, match="both a username and a password"):
        resolve_credentials("r.io", username="me")


def test_missing_or_empty_config_means_anonymous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "none"))
    assert resolve_credentials("r.io") is None
    write_config(tmp_path / "empty", {"auths": {"r.io": {}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    assert resolve_credentials("r.io") is None


def test_broken_credential_helper_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, {"credHelpers": {"r.io": "pack-test-no-such-helper"}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with pytest.raises(RegistryError, match="cannot read credentials for r.io"):
        from_docker_config("r.io")
