"""Image reference parsing and normalisation, no engine needed."""

from __future__ import annotations

import pytest

from packager.errors import RegistryError
from packager.registry import ImageReference, parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ubuntu", ImageReference("docker.io", "library/ubuntu", "latest")),
        ("team/model:v1", ImageReference("docker.io", "team/model", "v1")),
        ("127.0.0.1:5000/team/model", ImageReference("127.0.0.1:5000", "team/model", "latest")),
        ("localhost/model:1.0", ImageReference("localhost", "model", "1.0")),
        ("localhost:5000/a/b/c:t_1-x.y", ImageReference("localhost:5000", "a/b/c", "t_1-x.y")),
        ("ghcr.io/org/m@" + DIGEST, ImageReference("ghcr.io", "org/m", None, DIGEST)),
        ("ghcr.io/org/m:v2@" + DIGEST, ImageReference("ghcr.io", "org/m", "v2", DIGEST)),
        ("index.docker.io/library/python:3.11", ImageReference("docker.io", "library/python", "3.11")),
        ("[::1]:5000/m", ImageReference("[::1]:5000", "m", "latest")),
    ],
)
def test_parse(text: str, expected: ImageReference) -> None:
    assert parse_reference(text) == expected


def test_round_trip_and_pinned() -> None:
    ref = parse_reference("127.0.0.1:5000/team/model:v1")
    assert str(ref) == "127.0.0.1:5000/team/model:v1"
    assert ref.name == "127.0.0.1:5000/team/model"
    pinned = ref.with_digest(DIGEST)
    assert pinned.pinned == f"127.0.0.1:5000/team/model@{DIGEST}"
    assert parse_reference(str(pinned)) == pinned
    with pytest.raises(ValueError):
        _ = ref.pinned
    assert parse_reference("m", default_tag="dev").tag == "dev"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("Team/Model", "lower case"),
        ("r.io/m@sha256:xyz", "not a digest"),
        ("r.io/m:bad tag", "not a valid tag"),
        ("r.io/m:-bad", "not a valid tag"),
        ("r.io//m", "bad repository name"),
    ],
)
def test_invalid_references_say_why(text: str, why: str) -> None:
    with pytest.raises(RegistryError, match=why) as info:
        parse_reference(text)
    assert info.value.hint and "REGISTRY/NAME" in info.value.hint
