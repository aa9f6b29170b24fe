"""Shared helpers for transfer-engine tests: a range server, entries and fast settings."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zlib
from pathlib import Path
from dataclasses import dataclass, field

import pytest

from packager.runtime.manifest import Digest, Entry, Manifest, Revision, Source
from packager.runtime.transfer import TransferSettings
from packager.runtime.transfer.digests import PureCrc32c
from tests.fixtures.range_server import RangeServer

SHA = "0123456789abcdef0123456789abcdef01234567"
REPO = "org/model"
KiB = 1024
MiB = 1024 * KiB

# Small ranges and short timeouts keep every fault test well under a second.
FAST = TransferSettings(
    workers=4, chunk_size=256 * KiB, buffer_size=64 * KiB, connect_timeout=2.0,
    stall_timeout=0.5, backoff_base=0.01, backoff_max=0.05, attempts_per_range=5,
)
REPO_ROOT = str(Path(__file__).resolve().parents[3])


def digest_of(data: bytes, algorithm: str) -> str:
    if algorithm == "sha256":
        return hashlib.sha256(data).hexdigest()
    if algorithm == "md5":
        return hashlib.md5(data).hexdigest()
    if algorithm == "git-sha1":
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    if algorithm == "crc32c":
        h = PureCrc32c()
        h.update(data)
        return h.hexdigest()
    return ""


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic, incompressible-enough bytes (faster than os.urandom for a few MiB)."""
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    out = bytearray()
    i = 0
    while len(out) < size:
        out += zlib.crc32(block, i).to_bytes(4, "little") + block[4:]
        i += 1
    return bytes(out[:size])


def hf_entry(name: str, data: bytes, algorithm: str = "sha256", folder: str = "m",
             secret: str | None = None) -> Entry:
    return Entry(
        source=Source("hf", REPO, name),
        revision=Revision("main", SHA),
        size=len(data),
        hash=Digest(algorithm, digest_of(data, algorithm) if algorithm != "none" else ""),
        destination=f"/app/model_cache/{folder}/{name}",
        volume_folder=folder,
        secret_name=secret,
    )


def hf_path(name: str) -> str:
    return f"/{REPO}/resolve/{SHA}/{name}"


@dataclass
class Hub:
    server: RangeServer
    entries: list[Entry] = field(default_factory=list)
    data: dict[str, bytes] = field(default_factory=dict)

    def add(self, name: str, data: bytes, algorithm: str = "sha256", **kw) -> Entry:
        self.server.files[hf_path(name)] = data
        entry = hf_entry(name, data, algorithm, **kw)
        self.entries.append(entry)
        self.data[entry.destination] = data
        return entry

    def manifest(self) -> Manifest:
        return Manifest(tuple(sorted(self.entries, key=lambda e: e.destination)))

    @property
    def env(self) -> dict[str, str]:
        return {"HF_ENDPOINT": self.server.base_url, "PATH": os.environ.get("PATH", "")}

    def bytes_for(self, name: str) -> int:
        return self.server.counters.path_bytes.get(hf_path(name), 0)

    def requests_for(self, name: str) -> int:
        return self.server.counters.path_requests.get(hf_path(name), 0)

    def assert_placed(self, dest_root: str) -> None:
        for destination, data in self.data.items():
            rel = destination[len("/app/model_cache/"):]
            with open(os.path.join(dest_root, rel), "rb") as fh:
                assert fh.read() == data, destination


def _mounted(mount, fstype: str, *options: str):
    """Mount a fresh filesystem of fstype at mount for one test (mounting needs root, as the
    whole suite does: Docker, the registry); skip where mounting is not allowed."""
    mount.mkdir()
    done = subprocess.run(["mount", "-t", fstype, *options, fstype, str(mount)],
                          check=False, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {fstype} here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_fs(tmp_path):
    """A 4 MiB tmpfs: a nearly full volume."""
    yield from _mounted(tmp_path / "small", "tmpfs", "-o", "size=4m")


@pytest.fixture
def ramfs(tmp_path):
    """A ramfs: a filesystem that refuses O_DIRECT (tmpfs accepts it since Linux 6.6) and
    reports no size at all."""
    yield from _mounted(tmp_path / "ram", "ramfs")


@pytest.fixture
def hub():
    with RangeServer() as server:
        yield Hub(server)


def child_env(hub: Hub, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(hub.env)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def transfer_cmd(manifest_path: str, dest: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "packager.runtime.transfer", manifest_path, "--dest", dest,
            "--log-interval", "0.2", *extra]
