"""Golden Dockerfiles: the byte-exact Dockerfile pack renders for every sample truss, so every
change to rendered output shows up in review as a change to tests/render/golden/.

    .venv/bin/python -m pytest tests/render/test_golden.py --update-golden   # after a deliberate change

The samples with weights get a pinned lock (the MiniLM files at fixed sizes and digests), so the
render is offline and the same on every machine.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from packager import api

from .conftest import pin

GOLDEN = Path(__file__).parent / "golden"
MINILM_FILES = {  # the files the samples' allow_patterns select, at their real sizes
    "1_Pooling/config.json": 190, "config.json": 612, "model.safetensors": 90_868_376, "modules.json": 349,
    "sentence_bert_config.json": 53, "special_tokens_map.json": 112, "tokenizer.json": 466_247,
    "tokenizer_config.json": 350, "vocab.txt": 231_508,
}
SAMPLES = ["echo", "docker-server", "minilm-bake", "minilm-volume", "model-base/echo_model.py"]


def golden_name(sample: str) -> str:
    return sample.replace("/", "--").removesuffix(".py") + ".Dockerfile"


@pytest.mark.parametrize("sample_name", SAMPLES)
def test_rendered_dockerfile_matches_the_golden_file(sample_name: str, sample, tmp_path: Path,
                                                     request: pytest.FixtureRequest,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # a ModelBase file's truss is generated there
    target = sample(sample_name)
    if sample_name.startswith("minilm"):
        pin(target, MINILM_FILES)
    _, rendered = api.render(target, tmp_path / "ctx", locked=True)
    text = (rendered.path / "Dockerfile").read_text()
    golden = GOLDEN / golden_name(sample_name)
    if request.config.getoption("--update-golden"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    expected = golden.read_text() if golden.is_file() else ""
    diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), str(golden), "rendered"))
    assert text == expected, f"the rendered Dockerfile changed (rerun with --update-golden if meant):\n{diff}"
