"""The one secret lookup order, shared by the plan (build host), the server (Model's `secrets`)
and the weight transfer (credentials in the image)."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager.plan.sources.credentials import Credentials
from packager.runtime import secret_lookup
from packager.runtime.serving.secrets import Secrets
from packager.runtime.transfer.credentials import read_secret


def test_file_first_then_env_verbatim(tmp_path: Path) -> None:
    env = {"TRUSS_SECRET_tok": "from-env"}
    assert secret_lookup.lookup("tok", tmp_path, env) == secret_lookup.FoundSecret("from-env", "env TRUSS_SECRET_tok")
    (tmp_path / "tok").write_text("from-file\n")
    found = secret_lookup.lookup("tok", tmp_path, env)
    assert found is not None and found.value == "from-file\n" and found.origin == f"secret file {tmp_path / 'tok'}"
    assert "from-file" not in repr(found)


@pytest.mark.parametrize("unset", ["", "  \n", "***", " *** \n"])
def test_empty_and_placeholder_are_unset_in_file_and_env(tmp_path: Path, unset: str) -> None:
    (tmp_path / "tok").write_text(unset)
    assert secret_lookup.lookup("tok", tmp_path, {"TRUSS_SECRET_tok": unset}) is None
    # An unset file falls through to the environment.
    assert secret_lookup.lookup("tok", tmp_path, {"TRUSS_SECRET_tok": "v"}).value == "v"  # type: ignore[union-attr]


def test_a_name_that_is_not_a_file_name_never_reads_outside_the_dir(tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("leak")
    inner = tmp_path / "secrets"
    inner.mkdir()
    assert secret_lookup.lookup("../outside", inner, {}) is None
    with pytest.raises(Exception, match="not a plain file name"):
        read_secret("../outside", str(inner), {})


def test_every_reader_agrees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").write_text(" file-a\n")
    (tmp_path / "b").write_text("***")
    env = {"TRUSS_SECRET_b": "env-b", "TRUSS_SECRET_c": "***"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    plan = Credentials.from_environment(env, tmp_path)
    served = Secrets(["a", "b", "c"], str(tmp_path))
    # Verbatim where the model receives it, stripped where pack uses it as a credential.
    assert (served["a"], plan.secret("a", verbatim=True).value) == (" file-a\n", " file-a\n")  # type: ignore[union-attr]
    assert (read_secret("a", str(tmp_path), env), plan.secret("a").value) == ("file-a", "file-a")  # type: ignore[union-attr]
    assert (served["b"], read_secret("b", str(tmp_path), env), plan.secret("b").value) == ("env-b",) * 3  # type: ignore[union-attr]
    assert "c" not in served and read_secret("c", str(tmp_path), env) is None and plan.secret("c") is None
    assert secret_lookup.places("c", tmp_path) == plan.where_to_put("c")
