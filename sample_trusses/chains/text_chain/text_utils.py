"""A local module the chain imports: generated chainlets carry it (and only what they import)."""

import re

WORD = re.compile(r"\S+")


def words(text: str) -> list[str]:
    return WORD.findall(text)
