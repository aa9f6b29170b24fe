"""`pack check` on the model class: Truss's rules for `websocket` (model_wrapper's descriptor
checks) as located errors, the same verdict the runtime reaches at load, and the transport hint."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from packager.config import load_config
from packager.errors import ConfigError
from packager.runtime.serving.model_spec import ModelDefinitionError, describe_model

GOOD = """
    import fastapi


    class Model:
        def __init__(self, **kwargs):
            pass

        def load(self):
            pass

        async def websocket(self, websocket: fastapi.WebSocket) -> None:
            await websocket.send_text("hi")
"""

# name -> (model.py, the fragment of the one error `pack check` reports, or None when valid)
CASES = {
    "valid": (GOOD.replace("import fastapi", "fastapi = None"), None),
    "sync": ("""
        class Model:
            def websocket(self, ws):
                pass
    """, "must be an `async def`"),
    "async generator": ("""
        class Model:
            async def websocket(self, ws):
                yield 1
    """, "must not `yield`"),
    "no argument": ("""
        class Model:
            async def websocket(self):
                pass
    """, "it takes 0 arguments besides self"),
    "two arguments": ("""
        class Model:
            async def websocket(self, ws, other):
                pass
    """, "it takes 2 arguments besides self"),
    "keyword-only extra": ("""
        class Model:
            async def websocket(self, ws, *, flag=False):
                pass
    """, "it takes 2 arguments besides self"),
    "a request": ("""
        from starlette.requests import Request

        class Model:
            async def websocket(self, request: Request):
                pass
    """, "annotated as a Request"),
    "a request by module": ("""
        import starlette.requests

        class Model:
            async def websocket(self, request: starlette.requests.Request):
                pass
    """, "annotated as a Request"),
    "another Request class": ("""
        class Request:  # not starlette's: the websocket argument may be annotated with anything
            pass

        class Model:
            async def websocket(self, ws: Request):
                pass
    """, None),
    "with predict": ("""
        class Model:
            def predict(self, x):
                return x

            async def websocket(self, ws):
                pass
    """, "defines `websocket` and `predict`"),
    "with postprocess": ("""
        class Model:
            async def websocket(self, ws):
                pass

            def postprocess(self, x):
                return x
    """, "defines `websocket` and `postprocess`"),
    "staticmethod": ("""
        class Model:
            @staticmethod
            async def websocket(ws):
                pass
    """, None),
    "nested yield is fine": ("""
        class Model:
            async def websocket(self, ws):
                def chunks():
                    yield 1
                await ws.send_text(str(list(chunks())))
    """, None),
}


WEBSOCKET_CONFIG = "model_name: ws\nruntime:\n  transport:\n    kind: websocket\n"


def _truss(root: Path, code: str, config: str = WEBSOCKET_CONFIG) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "config.yaml").write_text(config)
    (root / "model" / "model.py").write_text(textwrap.dedent(code))
    return root


def _runtime_verdict(code: str) -> str | None:
    namespace: dict = {}
    exec(compile(textwrap.dedent(code), "model.py", "exec"), namespace)
    try:
        describe_model(namespace["Model"]())
    except ModelDefinitionError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("name", list(CASES))
def test_check_reports_truss_websocket_rules_at_the_method(tmp_path, name):
    code, fragment = CASES[name]
    root = _truss(tmp_path / "t", code)
    runtime_error = _runtime_verdict(code)
    if fragment is None:
        loaded = load_config(root)
        assert loaded.model_class is not None and loaded.model_class.defines_websocket
        assert loaded.warnings == ()
        assert runtime_error is None  # and the runtime loads it
        return
    with pytest.raises(ConfigError) as info:
        load_config(root)
    [problem] = info.value.problems
    source = textwrap.dedent(code).splitlines()
    line = next(i + 1 for i, text in enumerate(source) if "def websocket" in text)
    assert (problem.file, problem.line, problem.path) == (str(root / "model" / "model.py"), line, "Model.websocket")
    assert problem.column == source[line - 1].index("def websocket") + 1 - (6 if "async def" in source[line - 1] else 0)
    assert fragment in problem.message and problem.hint
    assert runtime_error is not None  # the load refuses what check refuses


def test_several_problems_are_reported_together(tmp_path):
    code = """
        class Model:
            def predict(self, x):
                return x

            def websocket(self, a, b):
                pass
    """
    with pytest.raises(ConfigError) as info:
        load_config(_truss(tmp_path / "t", code))
    messages = [p.message for p in info.value.problems]
    assert len(messages) == 3, messages
    assert "README" not in str(info.value)
    assert str(info.value).count("model/model.py:6:5: error: Model.websocket:") == 3


def test_what_the_source_cannot_show_is_left_to_the_load(tmp_path):
    inherited = """
        from base import Base

        class Model(Base):  # predict may come from Base: not judged here
            async def websocket(self, ws):
                pass
    """
    decorated = """
        import functools

        def traced(fn):
            @functools.wraps(fn)
            async def wrapper(*args):
                return await fn(*args)
            return wrapper

        class Model:
            @traced
            async def websocket(self, ws):
                pass
    """
    for i, code in enumerate((inherited, decorated)):
        loaded = load_config(_truss(tmp_path / str(i), code))
        assert loaded.model_class is not None and loaded.model_class.defines_websocket
    broken = load_config(_truss(tmp_path / "syntax", "class Model(:\n"))  # the load reports it
    assert broken.model_class is None


def test_a_websocket_model_without_the_websocket_transport_gets_a_warning(tmp_path):
    loaded = load_config(_truss(tmp_path / "t", GOOD, config="model_name: ws\n"))
    [warning] = loaded.warnings
    assert warning.severity == "warning" and warning.path == "runtime.transport.kind"
    assert "set runtime.transport.kind: websocket" in (warning.hint or "")
    predict = "class Model:\n    def predict(self, x):\n        return x\n"
    assert load_config(_truss(tmp_path / "p", predict, config="model_name: p\n")).warnings == ()
