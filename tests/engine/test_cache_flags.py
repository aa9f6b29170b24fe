"""The layer cache as each builder is told it: Debian's Docker 20.10 CLI (DOCKER_BUILDKIT=1) has
--cache-from and takes the inline cache as a build argument its frontend reads; buildx takes
typed --cache-from/--cache-to and exports a registry cache of every stage (mode=max). What a
builder cannot do is refused before the build, naming the flag and the way that works."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager.engine import BuilderKind, BuildRequest, FakeEngine, LayerCache
from packager.engine.buildkit import cache_flags
from packager.engine.failures import MissingCapabilityError
from packager.errors import EngineError


def test_legacy_cli_inline_and_import() -> None:
    cache = LayerCache(sources=("reg.local/m:main", "reg.local/m:pr-1"))
    assert cache_flags(BuilderKind.BUILDKIT_CLI, cache) == [
        "--cache-from", "reg.local/m:main", "--cache-from", "reg.local/m:pr-1",
        "--build-arg", "BUILDKIT_INLINE_CACHE=1",
    ]
    assert cache_flags(BuilderKind.BUILDKIT_CLI, LayerCache(inline=False)) == []


def test_buildx_typed_refs_inline_or_registry_export() -> None:
    assert cache_flags(BuilderKind.BUILDX, LayerCache(sources=("reg.local/m:main",))) == [
        "--cache-from", "type=registry,ref=reg.local/m:main", "--cache-to", "type=inline",
    ]
    both = LayerCache(sources=("type=local,src=/c",), export_ref="reg.local/m:cache")
    assert cache_flags(BuilderKind.BUILDX, both) == [
        "--cache-from", "type=local,src=/c", "--cache-to", "type=registry,ref=reg.local/m:cache,mode=max",
    ]
    assert cache_flags(BuilderKind.BUILDX, LayerCache(inline=False)) == []


def test_modes_and_descriptions() -> None:
    assert LayerCache().mode == "inline" and LayerCache(inline=False).mode == "none"
    assert LayerCache(export_ref="r/m:c").mode == "registry"
    assert "imported from r/m:main" in LayerCache(sources=("r/m:main",)).describe()


def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (tmp_path / "a").write_text("a")
    return tmp_path


@pytest.mark.parametrize("builder", [BuilderKind.BUILDKIT_CLI, BuilderKind.CLASSIC])
def test_a_registry_export_without_buildx_is_refused(tmp_path: Path, builder: BuilderKind) -> None:
    engine = FakeEngine(builder=builder)
    with pytest.raises(MissingCapabilityError, match="registry cache") as info:
        engine.build(BuildRequest(context(tmp_path), cache=LayerCache(export_ref="reg.local/m:cache")))
    assert "--cache-from" in (info.value.hint or "")
    assert not engine.builds


def test_the_classic_builder_cannot_import(tmp_path: Path) -> None:
    engine = FakeEngine(builder=BuilderKind.CLASSIC)
    with pytest.raises(MissingCapabilityError, match="--cache-from"):
        engine.build(BuildRequest(context(tmp_path), cache=LayerCache(sources=("reg.local/m:main",), inline=False)))


@pytest.mark.parametrize("ref", ["", "reg.local/m main", "--push"])
def test_a_reference_that_is_not_one_is_refused(tmp_path: Path, ref: str) -> None:
    with pytest.raises(EngineError, match="not an image reference"):
        FakeEngine().build(BuildRequest(context(tmp_path), cache=LayerCache(sources=(ref,))))


def test_cache_import_reasons_as_the_registry_gave_them() -> None:
    from packager.engine.buildkit import cache_import_reason

    ref = "127.0.0.1:5000/m:none"
    assert cache_import_reason("pulling from host 127.0.0.1:5000 failed with status code [manifests none]: "
                               "401 Unauthorized", ref) == "401 Unauthorized"
    assert cache_import_reason(f"{ref}: not found", ref) == "not found"
    assert cache_import_reason("", ref) == "failed"
