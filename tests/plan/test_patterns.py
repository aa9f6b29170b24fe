"""packager.plan.patterns behaves exactly like huggingface_hub's filter_repo_objects (§6.3)."""

from __future__ import annotations

import random

import pytest
from huggingface_hub.utils import filter_repo_objects

from packager.plan.patterns import PathFilter, filter_paths

PATHS = [
    "config.json",
    "sub/dir/a.json",
    "model.onnx",
    "onnx/model.onnx",
    "model.safetensors",
    "tokenizer/vocab.txt",
    ".gitattributes",
    "README.md",
]


@pytest.mark.parametrize(
    ("allow", "ignore", "kept"),
    [
        (["*.json"], None, ["config.json", "sub/dir/a.json"]),  # '*' crosses '/'
        (["*.JSON"], None, []),  # case-sensitive
        (["*.json"], ["sub/*"], ["config.json"]),  # ignore wins
        (["*.onnx"], None, ["model.onnx", "onnx/model.onnx"]),
        (["model.?nnx"], None, ["model.onnx"]),  # '?' is one character
        (["[mo]*.safetensors"], None, ["model.safetensors"]),  # '[seq]'
        (["onnx/"], None, ["onnx/model.onnx"]),  # trailing '/' = the directory's contents
        (["**/*.txt"], None, ["tokenizer/vocab.txt"]),
        ([r"tokenizer\vocab.txt"], None, ["tokenizer/vocab.txt"]),  # backslash = '/'
        (
            None,
            [".*", "*.md"],
            [
                "config.json",
                "sub/dir/a.json",
                "model.onnx",
                "onnx/model.onnx",
                "model.safetensors",
                "tokenizer/vocab.txt",
            ],
        ),
        ("*.onnx", None, ["model.onnx", "onnx/model.onnx"]),  # a bare string is one pattern
    ],
)
def test_documented_examples(
    allow: list[str] | None, ignore: list[str] | None, kept: list[str]
) -> None:
    assert filter_paths(PATHS, allow, ignore) == kept
    assert list(filter_repo_objects(PATHS, allow_patterns=allow, ignore_patterns=ignore)) == kept


def test_no_patterns_allow_everything() -> None:
    assert PathFilter.from_lists(None, None).is_everything
    assert filter_paths(PATHS) == PATHS
    assert filter_paths(PATHS, [], None) == []  # allow_patterns: [] matches nothing


SEGMENTS = ["a", "b", "ab", "model", "x.json", "w.bin", ".hidden", "A", "onnx", "v-1", "[x]", "é"]
PATTERN_ATOMS = [
    "*",
    "**",
    "?",
    "a",
    "b",
    ".",
    "/",
    "json",
    "bin",
    "[ab]",
    "[!a]",
    "[a-c]",
    "A",
    "onnx/",
    "\\",
    "[",
    "]",
    "!",
    "-",
    "x",
    "model",
]


def _path(rng: random.Random) -> str:
    return "/".join(rng.choice(SEGMENTS) for _ in range(rng.randint(1, 4)))


def _random_pattern(rng: random.Random) -> str:
    return "".join(rng.choice(PATTERN_ATOMS) for _ in range(rng.randint(1, 5)))


def _derived_pattern(rng: random.Random, path: str) -> str:
    """A pattern made from a real path, so that it matches some paths and not others."""
    parts = path.split("/")
    cut = rng.randint(1, len(parts))
    if rng.random() < 0.2:  # a directory pattern: 'a/b/'
        return "/".join(parts[: max(cut - 1, 1)]) + "/"
    out = []
    for part in parts[:cut]:
        roll = rng.random()
        if roll < 0.25:
            part = "*"
        elif roll < 0.4:
            part = "*" + part[-2:]
        elif roll < 0.5 and part:
            i = rng.randrange(len(part))
            part = part[:i] + rng.choice(["?", f"[{part[i]}z]", f"[!{part[i]}]"]) + part[i + 1 :]
        elif roll < 0.55:
            part = part.upper()
        out.append(part)
    pattern = "/".join(out)
    return pattern + ("*" if cut < len(parts) and rng.random() < 0.5 else "")


def _patterns(rng: random.Random, paths: list[str]) -> list[str] | None:
    if rng.random() < 0.25:
        return None
    return [
        _derived_pattern(rng, rng.choice(paths)) if rng.random() < 0.7 else _random_pattern(rng)
        for _ in range(rng.randint(0, 3))
    ]


@pytest.mark.parametrize("seed", range(6))
def test_matches_huggingface_hub_on_generated_cases(seed: int) -> None:
    """~300 random (paths, allow, ignore) cases per run, compared against huggingface_hub."""
    rng = random.Random(seed)
    for _ in range(50):
        paths = [_path(rng) for _ in range(rng.randint(1, 12))]
        if rng.random() < 0.2:
            paths.append(paths[0].replace("/", "\\"))
        allow, ignore = _patterns(rng, paths), _patterns(rng, paths)
        expected = list(filter_repo_objects(paths, allow_patterns=allow, ignore_patterns=ignore))
        assert filter_paths(paths, allow, ignore) == expected, (paths, allow, ignore)
