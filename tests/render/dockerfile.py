"""A small Dockerfile reader for tests: instructions with their flags, stage by stage."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass


@dataclass
class Instruction:
    stage: int
    keyword: str
    flags: list[str]
    args: str

    def __str__(self) -> str:
        return " ".join([self.keyword, *self.flags, self.args]).strip()


def parse(text: str) -> list[Instruction]:
    logical: list[str] = []
    buffer = ""
    for line in text.splitlines():
        if not buffer and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    assert not buffer, "dangling line continuation"
    result: list[Instruction] = []
    stage = -1
    for line in logical:
        keyword, _, rest = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        flags = []
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            flags.append(flag)
            rest = rest.strip()
        result.append(Instruction(stage, keyword, flags, rest))
    return result


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def index_of(instructions: list[Instruction], pattern: str) -> int:
    """Position of the first instruction whose text matches `pattern` (regex); -1 if none."""
    for n, ins in enumerate(instructions):
        if re.search(pattern, str(ins)):
            return n
    return -1


def words(args: str) -> list[str]:
    return shlex.split(args)
