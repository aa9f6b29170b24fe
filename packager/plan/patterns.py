"""allow_patterns / ignore_patterns: the one filtering behaviour pack applies to every source.

It is huggingface_hub's `filter_repo_objects` (truss-compat.md §6.3), re-implemented so that bake
mode, volume mode, S3 and GCS all filter identically and so the rule does not drift with the
installed huggingface_hub version:

1. paths are POSIX, relative to the repo root or bucket prefix, without a leading `/`;
2. `fnmatchcase`: case-sensitive; `*` matches any run of characters *including* `/`; `?` one
   character; `[seq]` / `[!seq]`; `**` is just two `*`; backslashes in paths and patterns are
   read as `/`;
3. a pattern ending in `/` means everything under that directory (`onnx/` == `onnx/*`);
4. allow_patterns None allows every path; otherwise a path must match at least one allow pattern,
   and any matching ignore pattern then excludes it (ignore wins).

An empty match set is the caller's error to raise: it knows the repo and can show its files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase


def normalize_pattern(pattern: str) -> str:
    pattern = pattern.replace("\\", "/")
    # A trailing slash names a directory: match everything below it, as huggingface_hub does.
    return pattern + "*" if pattern.endswith("/") else pattern


@dataclass(frozen=True)
class PathFilter:
    """A compiled allow/ignore pair; `allow is None` means "everything"."""

    allow: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()

    @classmethod
    def from_lists(
        cls, allow: Sequence[str] | str | None, ignore: Sequence[str] | str | None
    ) -> PathFilter:
        # A bare string is one pattern (huggingface_hub accepts that too), not a list of chars.
        allow_list = [allow] if isinstance(allow, str) else allow
        ignore_list = [ignore] if isinstance(ignore, str) else (ignore or [])
        return cls(
            allow=None if allow_list is None else tuple(normalize_pattern(p) for p in allow_list),
            ignore=tuple(normalize_pattern(p) for p in ignore_list),
        )

    def matches(self, path: str) -> bool:
        path = path.replace("\\", "/")
        if self.allow is not None and not any(fnmatchcase(path, p) for p in self.allow):
            return False
        return not any(fnmatchcase(path, p) for p in self.ignore)

    def select(self, paths: Iterable[str]) -> list[str]:
        """The matching paths, in input order."""
        return [p for p in paths if self.matches(p)]

    @property
    def is_everything(self) -> bool:
        return self.allow is None and not self.ignore


def filter_paths(
    paths: Iterable[str],
    allow_patterns: Sequence[str] | str | None = None,
    ignore_patterns: Sequence[str] | str | None = None,
) -> list[str]:
    """Convenience wrapper: PathFilter.from_lists(allow, ignore).select(paths)."""
    return PathFilter.from_lists(allow_patterns, ignore_patterns).select(paths)
