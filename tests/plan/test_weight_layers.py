"""The layer plan of baked weights: bounded, deterministic, and stable under one-file changes."""

from __future__ import annotations

import hashlib

import pytest

from packager.plan.lock import keep_pinned_commits
from packager.plan.weight_layers import plan_weight_layers, small_bucket_count
from packager.runtime.manifest import Digest, Entry, Manifest, Revision, Source

HUB = "/root/.cache/huggingface/hub/models--org--m"
MIB = 1024 * 1024


def hf(path: str, size: int, sha: str = "a" * 40, content: str | None = None, requested: str = "main") -> Entry:
    digest = hashlib.sha256((content if content is not None else path).encode()).hexdigest()
    return Entry(Source("hf", "org/m", path, "https://huggingface.co"), Revision(requested, sha), size,
                 Digest("sha256", digest), f"{HUB}/snapshots/{sha}/{path}", None, "hf_access_token")


def s3(key: str, size: int) -> Entry:
    return Entry(Source("s3", "bucket", key), Revision("", "v1"), size, Digest("md5", "0" * 32),
                 f"/app/model_cache/bucket/{key}", None, None)


def repo(small: int, shards: int, shard_size: int = 100 * MIB, sha: str = "a" * 40,
         changed: dict[str, str] | None = None) -> Manifest:
    changed = changed or {}
    entries = [hf(f"tok/{i:05d}.json", 1000, sha, changed.get(f"tok/{i:05d}.json")) for i in range(small)]
    entries += [hf(f"model-{i:05d}.safetensors", shard_size, sha, changed.get(f"model-{i:05d}.safetensors"))
                for i in range(shards)]
    return Manifest(tuple(entries))


def groups(manifest: Manifest, **kw: int) -> dict[str, tuple[Entry, ...]]:
    return {layer.name: layer.entries for layer in plan_weight_layers(manifest, **kw).layers}


@pytest.mark.parametrize("small,shards", [(10, 1), (2000, 150), (20000, 0), (0, 300), (5, 63)])
def test_any_repo_fits_the_bound(small: int, shards: int) -> None:
    plan = plan_weight_layers(repo(small, shards), max_layers=64)
    assert 1 <= len(plan.layers) <= 64
    assert sum(layer.files for layer in plan.layers) == small + shards
    assert plan.image_layers == len(plan.layers) + 1  # the snapshot links
    # Every file is stored once, in the blobs of its repo.
    stored = [e.destination for layer in plan.layers for e in layer.entries]
    assert len(stored) == len(set(stored)) and all(d.startswith(f"{HUB}/blobs/") for d in stored)


def test_large_files_get_a_layer_each_while_the_budget_allows() -> None:
    plan = plan_weight_layers(repo(100, 8), max_layers=64)
    large = [layer for layer in plan.layers if layer.name.startswith("pack-weights-l")]
    assert len(large) == 8 and all(layer.files == 1 for layer in large)
    assert [layer.files for layer in plan.layers if layer.name.startswith("pack-weights-s")] == [100]


def test_a_small_budget_is_respected() -> None:
    for budget in (1, 2, 3, 8):
        plan = plan_weight_layers(repo(500, 40), max_layers=budget)
        assert len(plan.layers) <= budget
        assert sum(layer.files for layer in plan.layers) == 540
    with pytest.raises(ValueError):
        plan_weight_layers(repo(1, 1), max_layers=0)


def test_small_buckets_grow_in_powers_of_two_up_to_a_quarter_of_the_budget() -> None:
    assert small_bucket_count(0, 0, 64) == 0
    assert small_bucket_count(10, 10_000, 64) == 1
    assert small_bucket_count(300, 0, 64) == 2
    assert small_bucket_count(2000, 0, 64) == 8
    assert small_bucket_count(100_000, 0, 64) == 16
    assert small_bucket_count(10, 3 * 1024 * MIB, 64) == 8  # bytes count too


def test_grouping_is_deterministic_and_independent_of_order() -> None:
    manifest = repo(3000, 100)
    shuffled = Manifest(tuple(reversed(manifest.entries)))
    assert plan_weight_layers(manifest) == plan_weight_layers(shuffled)


def test_a_new_revision_changing_one_file_changes_one_group() -> None:
    old = repo(2000, 150, sha="a" * 40)
    new = keep_pinned_commits(repo(2000, 150, sha="b" * 40, changed={"model-00042.safetensors": "new bytes"}), old)
    before, after = groups(old), groups(new)
    assert set(before) == set(after)
    assert [name for name in after if after[name] != before[name]] == \
        [name for name, entries in after.items() if any(e.source.path == "model-00042.safetensors" for e in entries)]
    links = plan_weight_layers(new).links
    assert all(f"/snapshots/{'b' * 40}/" in link.path for link in links)
    assert plan_weight_layers(new).refs == ((f"{HUB}/refs/main", "b" * 40),)


def test_adding_a_small_file_changes_one_group() -> None:
    base = repo(1000, 0)
    grown = Manifest(base.entries + (hf("tok/extra.json", 10),))
    before, after = groups(base), groups(grown)
    assert [name for name in after if after.get(name) != before.get(name)] == \
        [name for name, entries in after.items() if any(e.source.path == "tok/extra.json" for e in entries)]


def test_identical_content_is_one_blob_with_two_links() -> None:
    manifest = Manifest((hf("a/config.json", 10, content="same"), hf("b/config.json", 10, content="same")))
    plan = plan_weight_layers(manifest)
    assert sum(layer.files for layer in plan.layers) == 1
    blob = plan.layers[0].entries[0].destination
    assert {link.path: link.target for link in plan.links} == {
        f"{HUB}/snapshots/{'a' * 40}/a/config.json": "../../../blobs/" + blob.rsplit("/", 1)[1],
        f"{HUB}/snapshots/{'a' * 40}/b/config.json": "../../../blobs/" + blob.rsplit("/", 1)[1],
    }


def test_bucket_sources_are_stored_at_their_destination_without_links() -> None:
    plan = plan_weight_layers(Manifest((s3("w/a.bin", 10), s3("w/b.bin", 200 * MIB))))
    assert {e.destination for layer in plan.layers for e in layer.entries} == {
        "/app/model_cache/bucket/w/a.bin", "/app/model_cache/bucket/w/b.bin"}
    assert plan.links == () and plan.refs == () and plan.image_layers == 2
    assert all(layer.pip_packages == ("boto3",) for layer in plan.layers)


def test_keep_pinned_commits_only_for_unchanged_hub_files() -> None:
    old = Manifest((hf("a", 1, sha="a" * 40), hf("b", 1, sha="a" * 40), s3("k", 1)))
    new = Manifest((hf("a", 1, sha="b" * 40), hf("b", 1, sha="b" * 40, content="changed"), s3("k", 1)))
    kept = {e.source.path: e for e in keep_pinned_commits(new, old).entries}
    assert kept["a"].revision.resolved == "a" * 40  # same bytes: the old pin still serves them
    assert kept["a"].destination == f"{HUB}/snapshots/{'b' * 40}/a"  # the snapshot is the new commit
    assert kept["b"].revision.resolved == "b" * 40
    assert keep_pinned_commits(new, None) == new


def test_the_bound_leaves_room_for_the_base_and_pack_steps() -> None:
    from packager.plan.weight_layers import IMAGE_LAYER_BUDGET, PACK_STEP_LAYERS, weight_layer_bound

    assert weight_layer_bound(64, 1, 0) == (64, None)
    bound, note = weight_layer_bound(64, 40, 5)
    assert bound == IMAGE_LAYER_BUDGET - 40 - PACK_STEP_LAYERS - 5 - 1 and "base image has 40 layers" in (note or "")
    assert weight_layer_bound(64, 90, 0)[0] == 0


def test_a_heavy_base_image_lowers_the_plan_of_weight_layers(tmp_path) -> None:
    from packager.config import load_config
    from packager.errors import PlanError
    from packager.plan.build import plan_build
    from packager.plan.model import BaseImageFacts, BuildOptions

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.py").write_text("class Model:\n    pass\n")
    (tmp_path / "config.yaml").write_text(
        "model_cache:\n  - repo_id: org/m\n    use_volume: false\nbuild_commands: ['true', 'true']\n")
    loaded = load_config(tmp_path)
    options = BuildOptions(base_image="heavy:1")
    plan = plan_build(loaded, repo(3000, 100), options, BaseImageFacts("heavy:1", "", layers=50))
    assert len(plan.weight_layers.layers) <= 100 - 50 - 24 - 2 - 1
    assert any("baked weights take at most" in n for n in plan.notes)
    with pytest.raises(PlanError, match="before any weight layer"):
        plan_build(loaded, repo(10, 1), options, BaseImageFacts("heavy:1", "", layers=80))
