"""Binary predict (msgpack with numpy arrays and Truss's extensions, or a clear 415 without
msgpack) and pydantic-typed predict (validation, dumping, /schema)."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid

import pytest

from tests.runtime.harness import Runtime, make_app

BINARY_MODEL = """
    import numpy as np


    class Model:
        def predict(self, inputs):
            arr = np.asarray(inputs["array"])
            return {"doubled": arr * 2, "dtype": str(arr.dtype), "shape": list(arr.shape),
                    "when": inputs["when"], "amount": inputs["amount"], "id": inputs["id"],
                    "scalar": np.float32(1.5), "raw": inputs["raw"]}
"""

TYPED_MODEL = """
    from typing import Generator, Union

    import pydantic


    class Query(pydantic.BaseModel):
        text: str
        times: int = 1


    class Answer(pydantic.BaseModel):
        echoed: list[str]


    class Model:
        def predict(self, query: Query) -> Answer:
            return Answer(echoed=[query.text] * query.times)
"""

STREAM_TYPED_MODEL = """
    from typing import Generator

    import pydantic


    class Query(pydantic.BaseModel):
        text: str


    class Model:
        def predict(self, query: Query) -> Generator[str, None, None]:
            yield query.text
"""


@pytest.fixture(scope="module")
def binary_served(tmp_path_factory):
    pytest.importorskip("msgpack")
    pytest.importorskip("numpy")
    rt = Runtime(make_app(tmp_path_factory.mktemp("binary"), BINARY_MODEL)).start()
    rt.wait_ready()
    yield rt
    rt.kill()


def _pack(value) -> bytes:
    # Encode like Truss's client does (msgpack-numpy format, Truss's extensions).
    from packager.runtime.serving.serialization import to_msgpack

    return to_msgpack(value)


def test_binary_round_trip_with_numpy_and_extensions(binary_served):
    import numpy as np

    from packager.runtime.serving.serialization import parse_msgpack

    when = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.timezone.utc)
    ident = uuid.uuid4()
    body = _pack({"array": np.arange(6, dtype=np.int32).reshape(2, 3), "when": when,
                  "amount": decimal.Decimal("1.25"), "id": ident, "raw": b"\x00\x01"})
    for path in ("/v1/models/model:predict", "/v1/models/model:predict_binary"):
        status, headers, raw = binary_served.request(
            "POST", path, body, headers={"Content-Type": "application/octet-stream"})
        assert status == 200, raw
        assert headers["content-type"] == "application/octet-stream"
        out = parse_msgpack(raw)
        assert np.array_equal(out["doubled"], np.arange(6, dtype=np.int32).reshape(2, 3) * 2)
        assert out["doubled"].dtype == np.int32
        assert (out["dtype"], out["shape"]) == ("int32", [2, 3])
        assert out["when"] == when and out["amount"] == decimal.Decimal("1.25") and out["id"] == ident
        assert out["scalar"] == np.float32(1.5) and out["raw"] == b"\x00\x01"


def test_json_response_encodes_numpy_values(binary_served):
    status, body = binary_served.predict({"array": [[1, 2]], "when": "w", "amount": 1, "id": "i", "raw": "r"})
    assert status == 200
    assert body["doubled"] == [[2, 4]] and body["scalar"] == 1.5 and body["shape"] == [1, 2]


def test_malformed_msgpack_is_400(binary_served):
    status, headers, raw = binary_served.request(
        "POST", "/v1/models/model:predict", b"\xc1\xc1\xc1", headers={"Content-Type": "application/octet-stream"})
    assert status == 400 and b"Invalid msgpack payload" in raw
    assert headers["x-baseten-error-code"] == "700"


def test_binary_without_msgpack_is_a_clear_415(tmp_path, runtimes):
    app = make_app(tmp_path, "class Model:\n    def predict(self, x):\n        return x\n")
    shadow = tmp_path / "shadow" / "msgpack"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('msgpack is not installed')\n")
    rt = runtimes(app, PYTHONPATH=f"{tmp_path / 'shadow'}:{Runtime(app).env['PYTHONPATH']}")
    rt.wait_ready()
    status, _, raw = rt.request("POST", "/v1/models/model:predict", b"\x80",
                                      headers={"Content-Type": "application/octet-stream"})
    assert status == 415
    assert "add `msgpack` to requirements" in json.loads(raw)["error"]
    assert rt.predict({"json": "still works"}) == (200, {"json": "still works"})


@pytest.fixture(scope="module")
def typed_served(tmp_path_factory):
    rt = Runtime(make_app(tmp_path_factory.mktemp("typed"), TYPED_MODEL)).start()
    rt.wait_ready()
    yield rt
    rt.kill()


def test_pydantic_input_is_validated_and_output_dumped(typed_served):
    assert typed_served.predict({"text": "hi", "times": 2}) == (200, {"echoed": ["hi", "hi"]})
    status, headers, raw = typed_served.request("POST", "/v1/models/model:predict", {"times": "x"})
    assert status == 400
    message = json.loads(raw)["error"]
    assert message.startswith("Input Parsing Errors:")
    assert "`text`: Field required." in message and "`times`:" in message
    assert headers["x-baseten-error-code"] == "700"


def test_schema_is_served_for_pydantic_predict(typed_served):
    status, schema = typed_served.json("GET", "/v1/models/model/schema")
    assert status == 200
    assert schema["supports_streaming"] is False
    assert schema["input_schema"]["title"] == "Query"
    assert set(schema["input_schema"]["properties"]) == {"text", "times"}
    assert schema["output_schema"]["title"] == "Answer"


def test_schema_of_a_streaming_typed_predict(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, STREAM_TYPED_MODEL))
    rt.wait_ready()
    status, schema = rt.json("GET", "/v1/models/model/schema")
    assert status == 200
    assert schema["supports_streaming"] is True and schema["output_schema"] is None
    status, _, raw = rt.request("POST", "/v1/models/model:predict", {"text": "streamed"})
    assert (status, raw) == (200, b"streamed")
