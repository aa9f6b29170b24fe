"""Images say where they came from: the OCI labels from the git checkout that holds the truss
(never a credential from the remote URL, as CI runners clone with a token in it), the commit's
time rather than the build's, and pack's digests; nothing guessed outside a checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager import api
from packager.builder.provenance import (
    OCI_CREATED,
    OCI_REVISION,
    OCI_SOURCE,
    OCI_VERSION,
    PACK_CONTEXT_DIGEST,
    PACK_GIT_DIRTY,
    PACK_LOCK_DIGEST,
    git_facts,
    public_url,
)
from packager.engine import BuiltImage, FakeEngine
from tests.fixtures.git_checkout import git, truss_checkout

BASE = "pack-base:bookworm-py311"
TOKEN = "glcbt-64_SECRETsecret"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    truss = truss_checkout(repo, "models/echo", "model_name: provenance\npython_version: py311\n",
                           f"https://gitlab-ci-token:{TOKEN}@gitlab.example.com/team/models.git",
                           "2026-11-30T10:00:00+01:00")
    git(repo, "tag", "v1.2.0")
    return truss


def test_labels_from_the_checkout_without_the_token(checkout: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    engine = FakeEngine()
    engine.images[BASE] = BuiltImage("sha256:" + "b" * 64, (), 1)
    result = api.build(checkout, api.BuildOptions(base_image=BASE), engine=engine)
    labels = engine.image_labels[result.image.id]
    assert labels[OCI_REVISION] == git(checkout, "rev-parse", "HEAD")
    assert labels[OCI_CREATED] == "2026-11-30T10:00:00+01:00"  # the commit's time, not the build's
    assert labels[OCI_VERSION] == "v1.2.0"
    assert labels[OCI_SOURCE] == "https://gitlab.example.com/team/models.git"
    assert TOKEN not in repr(labels)
    assert labels[PACK_CONTEXT_DIGEST] == f"sha256:{result.context.digest}"
    assert labels[PACK_LOCK_DIGEST] == f"sha256:{result.plan.manifest.sha256()}"
    assert PACK_GIT_DIRTY not in labels


def test_uncommitted_changes_under_the_truss_are_marked(checkout: Path) -> None:
    (checkout / "model" / "model.py").write_text("class Model:\n    pass\n")
    facts = git_facts(checkout)
    assert facts is not None and facts.dirty
    git(checkout, "stash", "-q")
    (checkout.parents[1] / "elsewhere.txt").write_text("not the truss")
    facts = git_facts(checkout)
    assert facts is not None and not facts.dirty  # only the truss's own directory counts


def test_outside_a_checkout_nothing_is_guessed(tmp_path: Path) -> None:
    assert git_facts(tmp_path) is None


@pytest.mark.parametrize(("url", "shown"), [
    ("https://user:pass@github.com/o/r.git", "https://github.com/o/r.git"),
    ("https://x-access-token:ghs_abc@github.com/o/r", "https://github.com/o/r"),
    ("https://github.com/o/r.git", "https://github.com/o/r.git"),
    ("git@github.com:o/r.git", "git@github.com:o/r.git"),
    ("ssh://git@host:2222/o/r.git", "ssh://host:2222/o/r.git"),
])
def test_public_url(url: str, shown: str) -> None:
    assert public_url(url) == shown
