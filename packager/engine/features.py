"""Dockerfile features that only some builders have, and finding which ones a Dockerfile uses.

The classic builder rejects BuildKit syntax with a daemon error that names a flag, not the
consequence ("the --mount option requires BuildKit"), and an old BuildKit frontend says
"Unknown flag: link". Scanning the Dockerfile first lets pack say what is missing and why
before any step runs.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Feature(enum.Enum):
    SECRET_MOUNT = "secret mounts (RUN --mount=type=secret)"
    CACHE_MOUNT = "cache mounts (RUN --mount=type=cache)"
    OTHER_MOUNT = "bind/tmpfs/ssh mounts (RUN --mount)"
    COPY_CHMOD = "COPY/ADD --chmod"
    COPY_LINK = "COPY/ADD --link"
    HEREDOC = "heredocs (RUN <<EOF)"
    RUN_NETWORK = "RUN --network"
    BUILD_SECRETS = "build secrets (--secret)"  # secrets handed to the build at all


# Every BuildKit the Docker engine has shipped since 18.09 understands these.
BUILDKIT_FEATURES = frozenset(
    {Feature.SECRET_MOUNT, Feature.CACHE_MOUNT, Feature.OTHER_MOUNT, Feature.COPY_CHMOD, Feature.BUILD_SECRETS}
)
# The Dockerfile frontend built into Docker Engine 23.0 and later (dockerfile 1.5) adds these;
# 20.10's built-in frontend (what Debian bookworm's docker.io has) rejects them, and a newer one
# cannot be fetched with `# syntax=` on a machine that cannot pull.
MODERN_FRONTEND_FEATURES = frozenset({Feature.COPY_LINK, Feature.HEREDOC, Feature.RUN_NETWORK})
MODERN_FRONTEND_ENGINE_MAJOR = 23
CLASSIC_FEATURES: frozenset[Feature] = frozenset()


@dataclass(frozen=True)
class FeatureUse:
    feature: Feature
    line: int  # 1-based line of the instruction in the Dockerfile
    instruction: str  # the instruction, shortened, for messages


@dataclass(frozen=True)
class Instruction:
    line: int  # 1-based line where the instruction starts
    keyword: str  # upper-cased: RUN, COPY, ...
    flags: tuple[str, ...]  # leading --flags, e.g. ("--mount=type=cache,target=/root/.cache",)
    rest: str  # everything after the flags, continuation lines joined


_HEREDOC = re.compile(r"<<-?\s*[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?")
_ESCAPE_DIRECTIVE = re.compile(r"^#\s*escape\s*=\s*(\S)\s*$", re.IGNORECASE)


def parse_instructions(text: str) -> list[Instruction]:
    """A Dockerfile's instructions, enough to find flags (not a full parser: no ARG expansion)."""
    lines = text.splitlines()
    escape = "\\"
    # Parser directives sit at the very top, before any instruction or blank line.
    for raw in lines:
        match = _ESCAPE_DIRECTIVE.match(raw.strip())
        if match:
            escape = match.group(1)
            continue
        if not raw.startswith("#"):
            break
    out: list[Instruction] = []
    i = 0
    while i < len(lines):
        start = i
        stripped = lines[i].strip()
        i += 1
        if not stripped or stripped.startswith("#"):
            continue
        parts = [stripped]
        while parts[-1].endswith(escape) and i < len(lines):
            parts[-1] = parts[-1][:-1]
            nxt = lines[i].strip()
            i += 1
            if nxt.startswith("#"):  # comment lines inside a continuation are dropped
                continue
            parts.append(nxt)
        joined = " ".join(p for p in parts if p)
        keyword, _, rest = joined.partition(" ")
        flags: list[str] = []
        rest = rest.lstrip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            flags.append(flag)
            rest = rest.lstrip()
        instr = Instruction(start + 1, keyword.upper(), tuple(flags), rest)
        out.append(instr)
        # A heredoc body is not instructions: skip to its terminator.
        if instr.keyword in {"RUN", "COPY", "ADD"}:
            for word in _HEREDOC.findall(rest):
                while i < len(lines) and lines[i].strip() != word:
                    i += 1
                i += 1
    return out


def _mount_options(flag: str) -> dict[str, str]:
    """--mount=type=secret,id=x,required -> {"type": "secret", "id": "x", "required": "true"}."""
    options: dict[str, str] = {}
    for option in flag.partition("=")[2].split(","):
        key, sep, value = option.partition("=")
        options[key.strip()] = value.strip() if sep else "true"
    return options


def _mount_type(flag: str) -> str:
    return _mount_options(flag).get("type", "bind")


def scan_dockerfile(text: str) -> list[FeatureUse]:
    """Every use of a builder-specific feature in a Dockerfile, in file order."""
    uses: list[FeatureUse] = []
    for ins in parse_instructions(text):
        shown = f"{ins.keyword} {' '.join(ins.flags)} {ins.rest}".replace("  ", " ").strip()
        if len(shown) > 80:
            shown = shown[:77] + "..."

        def add(feature: Feature, ins: Instruction = ins, shown: str = shown) -> None:
            uses.append(FeatureUse(feature, ins.line, shown))

        for flag in ins.flags:
            name = flag.split("=", 1)[0]
            if ins.keyword == "RUN" and name == "--mount":
                kind = _mount_type(flag)
                add(
                    Feature.SECRET_MOUNT
                    if kind == "secret"
                    else Feature.CACHE_MOUNT
                    if kind == "cache"
                    else Feature.OTHER_MOUNT
                )
            elif ins.keyword == "RUN" and name == "--network":
                add(Feature.RUN_NETWORK)
            elif ins.keyword in {"COPY", "ADD"} and name == "--chmod":
                add(Feature.COPY_CHMOD)
            elif ins.keyword in {"COPY", "ADD"} and name == "--link":
                add(Feature.COPY_LINK)
        if ins.keyword in {"RUN", "COPY", "ADD"} and _HEREDOC.search(ins.rest):
            add(Feature.HEREDOC)
    return uses


def secret_mount_ids(text: str) -> list[tuple[int, str, bool]]:
    """(line, secret id, required) for every RUN --mount=type=secret.

    BuildKit's default id is the basename of the target; a secret not handed to the build is an
    empty mount unless required=true, which would turn a forgotten token into a confusing 401
    much later, so pack checks them all itself.
    """
    out: list[tuple[int, str, bool]] = []
    for ins in parse_instructions(text):
        if ins.keyword != "RUN":
            continue
        for flag in ins.flags:
            if not flag.startswith("--mount=") or _mount_type(flag) != "secret":
                continue
            options = _mount_options(flag)
            target = options.get("target") or options.get("dst") or options.get("destination") or ""
            secret_id = options.get("id") or target.rstrip("/").rsplit("/", 1)[-1]
            out.append((ins.line, secret_id, options.get("required", "false").lower() == "true"))
    return out


def missing_features(uses: list[FeatureUse], available: frozenset[Feature]) -> list[FeatureUse]:
    """The uses an engine with `available` features cannot build, first use of each feature."""
    seen: set[Feature] = set()
    out: list[FeatureUse] = []
    for use in uses:
        if use.feature not in available and use.feature not in seen:
            seen.add(use.feature)
            out.append(use)
    return out
