"""A build given registry logins gets a docker config of its own: the user's config with the
logins added (a credential helper for the same registry dropped, so the login wins), the CLI
plugins linked, root-only; the user's config is left as it was."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

from packager.engine import RegistryLogin
from packager.engine.build_logins import login_config_dir


def test_logins_added_to_a_copy_of_the_users_config(tmp_path: Path) -> None:
    user = tmp_path / "user"
    (user / "cli-plugins").mkdir(parents=True)
    original = {"auths": {"other.io": {"auth": "eDp5"}}, "credHelpers": {"reg.local": "pass", "gcr.io": "gcloud"},
                "credsStore": "desktop"}
    (user / "config.json").write_text(json.dumps(original))
    dest = login_config_dir(tmp_path / "build", [RegistryLogin("reg.local", "ci", "pw:with:colons")], source=user)
    config = json.loads((dest / "config.json").read_text())
    assert base64.b64decode(config["auths"]["reg.local"]["auth"]).decode() == "ci:pw:with:colons"
    assert config["auths"]["other.io"] == {"auth": "eDp5"}
    assert config["credHelpers"] == {"gcr.io": "gcloud"} and "credsStore" not in config
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert stat.S_IMODE((dest / "config.json").stat().st_mode) == 0o600
    assert (dest / "cli-plugins").resolve() == (user / "cli-plugins").resolve()
    assert json.loads((user / "config.json").read_text()) == original


def test_no_user_config(tmp_path: Path) -> None:
    dest = login_config_dir(tmp_path / "build", [RegistryLogin("reg.local", "ci", "pw")], source=tmp_path / "none")
    assert set(json.loads((dest / "config.json").read_text())["auths"]) == {"reg.local"}


def test_the_password_is_not_in_the_repr() -> None:
    assert "pw-value" not in repr(RegistryLogin("reg.local", "ci", "pw-value"))
