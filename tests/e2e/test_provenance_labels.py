"""`docker inspect` of an image pack built answers which commit and which pinned weights it holds:
a real build from a git checkout whose remote URL carries a CI token (as GitLab runners clone),
read back from the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager.builder.provenance import (
    OCI_CREATED,
    OCI_REVISION,
    OCI_SOURCE,
    OCI_VERSION,
    PACK_CONTEXT_DIGEST,
    PACK_GIT_DIRTY,
    PACK_LOCK_DIGEST,
)
from tests.e2e.conftest import Resources, build
from tests.fixtures.git_checkout import git, truss_checkout

TOKEN = "glcbt-64_e2eSECRETvalue"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    config = "model_name: e2e-provenance\npython_version: py311\nrequirements: []\n"
    return truss_checkout(tmp_path / "repo", "echo", config,
                          f"https://gitlab-ci-token:{TOKEN}@gitlab.example.com/team/models.git",
                          "2026-12-01T08:30:00+00:00")


def test_inspect_names_the_commit_and_the_pinned_weights(checkout: Path, resources: Resources) -> None:
    result = build(checkout, resources.tag("provenance"))
    labels = resources.client.api.inspect_image(result.image.id)["Config"]["Labels"]
    assert labels[OCI_REVISION] == git(checkout, "rev-parse", "HEAD")
    assert labels[OCI_CREATED] == "2026-12-01T08:30:00+00:00"
    assert labels[OCI_SOURCE] == "https://gitlab.example.com/team/models.git"
    assert labels[OCI_VERSION] == git(checkout, "rev-parse", "--short", "HEAD")
    assert labels[PACK_CONTEXT_DIGEST] == f"sha256:{result.context.digest}"
    assert labels[PACK_LOCK_DIGEST] == f"sha256:{result.plan.manifest.sha256()}"
    assert PACK_GIT_DIRTY not in labels
    history = resources.client.api.history(result.image.id)
    assert TOKEN not in repr(labels) + repr(history)
    # Labels are config only: an edit committed elsewhere in the repo relabels, and reuses every layer.
    (checkout.parent / "README").write_text("docs")
    git(checkout.parent, "add", ".")
    git(checkout.parent, "commit", "-q", "-m", "docs")
    again = build(checkout, resources.tag("provenance"))
    assert again.image.built_steps == ()
    relabelled = resources.client.api.inspect_image(again.image.id)["Config"]["Labels"]
    assert relabelled[OCI_REVISION] == git(checkout, "rev-parse", "HEAD") != labels[OCI_REVISION]
