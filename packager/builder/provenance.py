"""What an image says about where it came from, so `docker inspect` answers which commit and which
pinned weights it holds: the OCI annotation labels, read from the git checkout that holds the
truss (source, revision, created, version), and pack's own (its version, the context digest, the
digest of the pinned weights manifest).

Labels live in the image config only: they change the image id, never a layer or the layer cache
(a new commit with the same content reuses every layer). Outside a git checkout, or without git,
the git labels are left out rather than guessed; `created` is the commit's time, not the build's,
so two builds of one commit label alike."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .. import __version__
from ..plan.model import BuildPlan

OCI_SOURCE = "org.opencontainers.image.source"
OCI_REVISION = "org.opencontainers.image.revision"
OCI_CREATED = "org.opencontainers.image.created"
OCI_VERSION = "org.opencontainers.image.version"
OCI_TITLE = "org.opencontainers.image.title"
PACK_VERSION = "dev.pack.version"
PACK_CONTEXT_DIGEST = "dev.pack.context-digest"
PACK_LOCK_DIGEST = "dev.pack.lock-digest"  # sha256 of the pinned weights manifest (pack.lock's files)
PACK_GIT_DIRTY = "dev.pack.git-dirty"  # "true" when the truss had uncommitted changes

_GIT_TIMEOUT_S = 10


@dataclass(frozen=True)
class GitFacts:
    revision: str  # the full commit id of HEAD
    created: str  # the commit's time, ISO 8601 with its offset
    version: str  # `git describe --tags --always` (a tag when HEAD has one)
    source: str | None  # the origin remote's URL without credentials; None without a remote
    dirty: bool  # uncommitted or untracked changes under the truss directory


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True,
                              timeout=_GIT_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):  # no git, or a hung filesystem
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def public_url(url: str) -> str:
    """A remote URL as it may be shown: a token in https://user:TOKEN@host/... (how CI runners
    clone) must never reach an image label."""
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return url


def git_facts(directory: Path) -> GitFacts | None:
    """What git says about the checkout holding `directory`; None outside one (or without git)."""
    revision = _git(directory, "rev-parse", "--verify", "HEAD")
    if not revision:
        return None
    remote = _git(directory, "remote")
    names = remote.split() if remote else []
    url = None
    if names:
        url = _git(directory, "remote", "get-url", "origin" if "origin" in names else names[0])
    status = _git(directory, "status", "--porcelain", "--", ".")
    return GitFacts(
        revision=revision,
        created=_git(directory, "show", "-s", "--format=%cI", "HEAD") or "",
        version=_git(directory, "describe", "--tags", "--always") or revision[:12],
        source=public_url(url) if url else None,
        dirty=bool(status),
    )


def provenance_labels(plan: BuildPlan, context_digest: str, git: GitFacts | None) -> dict[str, str]:
    labels = {
        OCI_TITLE: plan.model_name,
        PACK_VERSION: __version__,
        PACK_CONTEXT_DIGEST: f"sha256:{context_digest}",
        PACK_LOCK_DIGEST: f"sha256:{plan.manifest.sha256()}",
    }
    if git is not None:
        labels[OCI_REVISION] = git.revision
        labels[OCI_VERSION] = git.version + ("-dirty" if git.dirty else "")
        if git.created:
            labels[OCI_CREATED] = git.created
        if git.source:
            labels[OCI_SOURCE] = git.source
        if git.dirty:
            labels[PACK_GIT_DIRTY] = "true"
    return labels
