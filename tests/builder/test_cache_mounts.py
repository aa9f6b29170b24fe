"""pack's BuildKit cache mounts, told apart from everyone else's by what BuildKit records (the
target and the first command; never the id), and kept in step with what the templates mount."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from packager import api
from packager.builder import is_pack_cache_mount, pack_cache_mounts
from packager.engine import CacheEntry
from packager.render.context import CACHE_MOUNTS

from tests.render.conftest import make_truss

GOLDEN = Path(__file__).resolve().parents[1] / "render" / "golden"

# As Docker 20.10 lists pack's entries (docker system df -v), and entries of other projects.
PIP = "cached mount /root/.cache/pip from exec /bin/sh -c python3 -m pip install -r /opt/pack/server-requirements.txt"
UV = ("cached mount /root/.cache/uv from exec /bin/sh -c sh /opt/pack-installer/install -r "
      "/opt/pack/server-requirements.txt")
WEIGHTS = ("cached mount /var/cache/pack-weights from exec /bin/sh -c PYTHONPATH=/opt/pack python3 -m "
           "packager.runtime.transfer /opt/pack/weights.json --cache /var/cache/pack-weights "
           "--secrets-dir /run/secrets")
APT = ("cached mount /var/lib/apt/lists from exec /bin/sh -c apt-get update && apt-get install -y "
       "--no-install-recommends curl")
OTHERS = [
    "cached mount /root/.cache/pip from exec /bin/sh -c pip install -r requirements.txt",  # same target
    "cached mount /cache from exec /bin/sh -c echo run >> /cache/runs",
    "cached mount /root/.cache/uv from exec /bin/sh -c uv pip install --system -r requirements.txt",
    "cached mount /var/lib/apt/lists from exec /bin/sh -c apt-get update && apt-get install -y curl",
]


def entry(description: str, kind: str = "exec.cachemount", in_use: bool = False) -> CacheEntry:
    return CacheEntry(f"id{abs(hash(description)) % 10**8}", kind, description, 100, in_use)


@pytest.mark.parametrize("description", [PIP, UV, WEIGHTS, APT])
def test_packs_cache_mounts_are_recognised(description: str) -> None:
    assert is_pack_cache_mount(entry(description))


@pytest.mark.parametrize("description", OTHERS)
def test_other_projects_cache_mounts_are_left_alone(description: str) -> None:
    assert not is_pack_cache_mount(entry(description))


def test_only_unused_cache_mount_records_are_selected() -> None:
    layer = entry(f"mount / from exec /bin/sh -c {PIP.split(' -c ', 1)[1]}", kind="regular")
    busy = entry(WEIGHTS, in_use=True)
    free = entry(PIP)
    assert pack_cache_mounts([layer, busy, free, entry(OTHERS[0])]) == [free]


def test_every_cache_mount_the_templates_write_is_one_pack_knows(tmp_path: Path) -> None:
    """A render using every mount (system_packages, requirements, baked S3 weights): each
    --mount=type=cache flag is one of CACHE_MOUNTS, so cleanup's selection cannot miss one."""
    truss = make_truss(tmp_path / "t", "model_name: mounts\nsystem_packages: [curl]\nrequirements: [numpy]\n")
    _, rendered = api.render(truss, tmp_path / "ctx")
    texts = [(rendered.path / "Dockerfile").read_text(), *(p.read_text() for p in GOLDEN.glob("*.Dockerfile"))]
    flags = {flag for text in texts for flag in re.findall(r"--mount=type=cache,\S+", text)}
    known = {m.flag for m in CACHE_MOUNTS}
    assert flags == known  # the bake golden file has the weights downloads' mount
    assert {m.id for m in CACHE_MOUNTS} >= {"pack-pip", "pack-apt-lists", "pack-apt-archives", "pack-weights"}
