"""Hash algorithms of the manifest, as incremental hashers.

`git-sha1` is git's blob id: sha1 over b"blob <size>\\0" + content, which is what the HF API
publishes for files stored in git rather than LFS. `crc32c` uses google_crc32c when the image has
it and a pure-Python table otherwise (slow, so large files fall back to a size-only check and say
so). All digests are lower-case hex; a crc32c is the big-endian 32-bit value as 8 hex digits.
"""

from __future__ import annotations

import hashlib
from types import ModuleType
from typing import Protocol


class Hasher(Protocol):
    def update(self, data: bytes | memoryview) -> None: ...

    def hexdigest(self) -> str: ...


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


class PureCrc32c:
    """Castagnoli CRC (reflected 0x1EDC6F41), byte at a time; correct but only a few MB/s."""

    def __init__(self) -> None:
        self._crc = 0xFFFFFFFF

    def update(self, data: bytes | memoryview) -> None:
        crc, table = self._crc, _TABLE
        for byte in bytes(data):
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        self._crc = crc

    def hexdigest(self) -> str:
        return f"{self._crc ^ 0xFFFFFFFF:08x}"


class _Crc32cChecksum(Protocol):
    """google_crc32c.Checksum (its functions carry no annotations)."""

    def update(self, chunk: bytes) -> None: ...

    def digest(self) -> bytes: ...


class _NativeCrc32c:
    def __init__(self, module: ModuleType) -> None:
        self._h: _Crc32cChecksum = module.Checksum()

    def update(self, data: bytes | memoryview) -> None:
        self._h.update(bytes(data))

    def hexdigest(self) -> str:
        return self._h.digest().hex()


def native_crc32c_available() -> bool:
    try:
        import google_crc32c  # noqa: F401  (only in images whose manifest has GCS entries)
    except ImportError:
        return False
    return True


def new_hasher(algorithm: str, size: int, pure_crc32c_limit: int) -> Hasher | None:
    """A fresh hasher, or None when the entry can only be checked by size."""
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "md5":
        return hashlib.md5(usedforsecurity=False)
    if algorithm == "git-sha1":
        h = hashlib.sha1(usedforsecurity=False)
        h.update(b"blob %d\0" % size)
        return h
    if algorithm == "crc32c":
        if native_crc32c_available():
            import google_crc32c

            return _NativeCrc32c(google_crc32c)
        return PureCrc32c() if size <= pure_crc32c_limit else None
    return None  # "none": nothing published to check against


def verification_label(algorithm: str, hasher: Hasher | None) -> str:
    return algorithm if hasher is not None else "size-only"
