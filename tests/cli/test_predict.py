"""`pack predict` against a real server: pack's runtime as a local process (no Docker) serving a
model that streams, answers msgpack and echoes request headers.

Order of events, never timings: the streaming model blocks between its chunks until the test
creates a release file, which the test does only after the CLI printed the first chunk; had the
CLI held the chunk back, the model gives up waiting and says so in its second chunk."""

from __future__ import annotations

import json
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from packager import api
from packager.cli.main import main
from tests.cli.test_cli_start import run_pack
from tests.runtime.harness import REPO_ROOT, Runtime, free_port, make_app

np = pytest.importorskip("numpy")
pytest.importorskip("msgpack")

MODEL = """
    import os
    import time

    import numpy as np

    GIVE_UP_S = 30  # below the runtime's streaming_read_timeout


    def released(path):
        deadline = time.monotonic() + GIVE_UP_S
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)
        return os.path.exists(path)


    class Model:
        def predict(self, inputs, request: "Request"):
            mode = inputs["mode"]
            if mode == "stream":
                return self.stream(inputs["release"])
            if mode == "wait":
                return {"released": released(inputs["release"])}
            if mode == "array":
                x = inputs["x"]
                return {"doubled": np.asarray(x) * 2, "received": type(x).__name__,
                        "content_type": request.headers.get("content-type")}
            if mode == "headers":
                return {name: request.headers.get(name) for name in ("x-pack-test", "x-other", "content-type")}
            if mode == "text":
                return "plain text"
            raise ValueError(f"unknown mode {mode}")

        def stream(self, release):
            yield "first\\n"
            yield f"second released={released(release)}\\n"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = make_app(tmp_path_factory.mktemp("predict"), MODEL,
                   config={"runtime": {"predict_concurrency": 8, "streaming_read_timeout": 60}})
    with Runtime(app) as runtime:
        runtime.wait_ready()
        yield f"http://127.0.0.1:{runtime.port}"


def _pack(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "packager.cli.main", *args], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_cli_prints_each_streamed_chunk_as_it_arrives(server: str, tmp_path: Path) -> None:
    release = tmp_path / "release"
    pack = _pack("predict", "--url", server, "-d", json.dumps({"mode": "stream", "release": str(release)}))
    try:
        assert pack.stdout is not None
        # A guard against hanging, not a timing: a CLI that buffers still ends within GIVE_UP_S.
        ready, _, _ = select.select([pack.stdout], [], [], 120)
        assert ready, "pack predict printed nothing"
        first = pack.stdout.readline()
        assert first == b"first\n"
        release.touch()  # only now may the model send its second chunk
        rest, err = pack.communicate(timeout=120)
    finally:
        if pack.poll() is None:
            pack.kill()
            pack.wait()
    assert pack.returncode == 0, err.decode()
    assert rest == b"second released=True\n"


def test_api_stream_yields_a_chunk_before_the_model_sends_the_next(server: str, tmp_path: Path) -> None:
    release = tmp_path / "release"
    with api.predict_stream(server, {"mode": "stream", "release": str(release)}, timeout=60) as answer:
        assert answer.is_stream and not answer.is_json
        chunks = iter(answer)
        assert next(chunks) == b"first\n"
        release.touch()
        assert b"".join(chunks) == b"second released=True\n"


def test_binary_round_trips_a_numpy_array(server: str) -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    answer = api.predict(server, {"mode": "array", "x": x}, binary=True, timeout=60)
    assert isinstance(answer, dict)
    assert answer["received"] == "ndarray"  # the model got an array, not a list
    assert answer["content_type"] == "application/octet-stream"
    doubled = answer["doubled"]
    assert isinstance(doubled, np.ndarray)
    assert doubled.dtype == np.float32 and doubled.shape == (2, 3)
    assert (doubled == x * 2).all()


def test_cli_binary_sends_msgpack_and_prints_the_decoded_answer(server: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--url", server, "--binary", "-d", '{"mode": "array", "x": [[1, 2], [3, 4]]}']) == 0
    assert json.loads(capsys.readouterr().out) == {
        "doubled": [[2, 4], [6, 8]], "received": "list", "content_type": "application/octet-stream"}
    # The same input as JSON: the model sees JSON's content type.
    assert main(["predict", "--url", server, "-d", '{"mode": "array", "x": [1]}']) == 0
    assert json.loads(capsys.readouterr().out)["content_type"] == "application/json"


def test_headers_reach_the_model(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["predict", "--url", server, "-d", '{"mode": "headers"}', "-H", "X-Pack-Test: hello: world",
                 "--header", "x-other:2", "-H", "Content-Type: application/json; charset=utf-8"])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {
        "x-pack-test": "hello: world", "x-other": "2", "content-type": "application/json; charset=utf-8"}


@pytest.mark.parametrize("item", ["no-colon", ": empty name", "two words: x", "X-A: b\nX-B: c"])
def test_a_malformed_header_is_a_usage_error_naming_the_flag(item: str, capsys: pytest.CaptureFixture[str]) -> None:
    # No server: the header is refused before anything is sent.
    assert main(["predict", "--url", f"http://127.0.0.1:{free_port()}", "-d", "{}", "-H", item]) == 2
    err = capsys.readouterr().err
    assert "-H/--header" in err
    assert "KEY:VALUE" in err or "one line" in err


def test_json_and_text_answers_print_as_before(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--url", server, "-d", '{"mode": "headers"}']) == 0
    out = capsys.readouterr().out
    assert out.startswith("{\n  ")  # indented JSON
    assert main(["predict", "--url", server, "-d", '{"mode": "text"}']) == 0
    assert capsys.readouterr().out == "plain text\n"  # a JSON string prints as its text


def test_timeout_names_the_flag(server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    release = tmp_path / "release"
    try:
        code = main(["predict", "--url", server, "--timeout", "0.5", "-d",
                     json.dumps({"mode": "wait", "release": str(release)})])
    finally:
        release.touch()  # let the model's thread go
    assert code == 1
    err = capsys.readouterr().err
    assert "no answer from" in err and "--timeout" in err


def test_errors_are_reported_once(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--url", server, "-d", '{"mode": "nope"}']) == 1
    err = capsys.readouterr().err
    assert "the model answered HTTP 500" in err and "Traceback" not in err
    assert main(["predict", "--url", f"http://127.0.0.1:{free_port()}", "-d", "{}"]) == 1
    assert "no model answers at" in capsys.readouterr().err
    assert main(["predict", "--url", "ftp://x", "-d", "{}"]) == 1
    assert "is not an http(s) URL" in capsys.readouterr().err


def test_predict_loads_no_heavy_library(server: str) -> None:
    assert run_pack("predict", "--url", server, "-d", '{"mode": "headers"}') == {"code": 0, "loaded": []}
