"""Direct I/O (O_DIRECT) for the download's writes and the hash's read-backs.

Why: through the page cache, every byte written costs a copy into a freshly allocated page, and
the file then sits in memory, dirty, until write-back. For a node pre-warm of a model larger than
the free memory, or beside workloads whose page cache should survive, direct I/O moves the bytes
from the transfer buffer to the device without either. The cost moves, it does not vanish: the
first buffered read of the file (a model load) fills the page cache then. So it is an opt-in
(TransferSettings.direct_io, PACK_TRANSFER_DIRECT_IO, `pack fetch --direct-io`).

O_DIRECT needs the buffer address, the file offset and the length aligned to the device's
logical block size; 4096 covers both 512-byte and 4K-native devices. Bytes that cannot be
written whole blocks at a time (a file's unaligned tail) go through the buffered descriptor.
Filesystems without O_DIRECT (ramfs, some FUSE mounts; tmpfs before Linux 6.6) refuse it at
open: those files are written through the page cache as usual.
"""

from __future__ import annotations

import errno
import os

ALIGN = 4096


def align_down(n: int) -> int:
    return n & ~(ALIGN - 1)


def align_up(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


def open_direct(path: str) -> int:
    """A second, O_DIRECT descriptor of the (already created) file at path; -1 where the
    filesystem does not support direct I/O."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return -1
    try:
        return os.open(path, os.O_RDWR | flag)
    except OSError as exc:
        if unsupported(exc):
            return -1
        raise


def unsupported(exc: OSError) -> bool:
    """Direct I/O refused for alignment or support reasons (not a disk error)."""
    return exc.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP)
