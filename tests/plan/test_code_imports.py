"""The static import scan: what counts as third-party, guarded, local or never run; nothing runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

from packager.plan.code_imports import scan, top_level_names


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def _modules(result) -> dict[str, tuple[str, int, bool]]:
    return {s.module: (s.file, s.line, s.guarded) for s in result.sites}


def test_every_import_form_is_found_with_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path, {"model/model.py": """\
        import os, yaml
        import numpy as np
        from fastapi import FastAPI
        from opentelemetry.sdk import trace as sdk_trace
        import importlib


        class Model:
            def load(self):
                import requests
                self.mod = importlib.import_module("loguru")
                self.other = __import__("psutil")

            def predict(self, x):
                if x:
                    from websockets.sync import client
                return x
        """})
    result = scan(tmp_path, [tmp_path / "model"])
    found = _modules(result)
    assert found["yaml"] == ("model/model.py", 1, False)
    assert found["os"] == ("model/model.py", 1, False)  # the scan reports all; the plan picks
    assert found["numpy"] == ("model/model.py", 2, False)
    assert found["fastapi"] == ("model/model.py", 3, False)
    assert found["opentelemetry.sdk"] == ("model/model.py", 4, False)
    assert found["requests"] == ("model/model.py", 10, False)
    assert found["loguru"] == ("model/model.py", 11, False)
    assert found["psutil"] == ("model/model.py", 12, False)
    assert found["websockets.sync"] == ("model/model.py", 16, False)
    sdk = next(s for s in result.sites if s.module == "opentelemetry.sdk")
    assert sdk.candidates() == ("opentelemetry.sdk.trace",)
    assert result.unscanned == ()


def test_try_except_import_error_marks_guarded_and_type_checking_is_skipped(tmp_path: Path) -> None:
    _write(tmp_path, {"model/model.py": """\
        from typing import TYPE_CHECKING
        import typing

        try:
            import uvloop
        except ImportError:
            uvloop = None
            import aiofiles  # the fallback itself is not guarded
        try:
            from msgpack_numpy import patch
        except (ValueError, ModuleNotFoundError):
            patch = None
        try:
            import joblib
        except ValueError:  # does not catch ImportError: a hard requirement
            joblib = None
        try:
            import psutil
        except:  # noqa: E722 - a bare except catches it too
            psutil = None
        if TYPE_CHECKING:
            import pydantic
        else:
            import starlette
        if typing.TYPE_CHECKING:
            import loguru
        """})
    found = _modules(scan(tmp_path, [tmp_path / "model"]))
    assert found["uvloop"][2] is True
    assert found["aiofiles"][2] is False
    assert found["msgpack_numpy"][2] is True
    assert found["joblib"][2] is False
    assert found["psutil"][2] is True
    assert "pydantic" not in found and "loguru" not in found
    assert found["starlette"][2] is False


def test_the_truss_own_modules_and_relative_imports_are_local(tmp_path: Path) -> None:
    root = tmp_path / "truss"
    _write(root, {
        "model/model.py": """\
            import helpers
            import yaml_tools.parse
            from model.helpers import x
            from . import sibling
            from .sibling import y
            import shared_pkg
            import vendored
            import requests
            """,
        "model/helpers.py": "x = 1\n",
        "model/yaml_tools/parse.py": "import yaml\n",  # a namespace package of the model dir
        "packages/shared_pkg/__init__.py": "from shared_pkg import inner\nimport aiohttp\n",
        "../ext/vendored.py": "import numpy\n",
    })
    result = scan(root, [root / "model", root / "packages", tmp_path / "ext"], local_names={"model"})
    found = _modules(result)
    assert set(found) == {"requests", "yaml", "aiohttp", "numpy"}
    assert found["yaml"] == ("model/yaml_tools/parse.py", 1, False)
    assert found["aiohttp"] == ("packages/shared_pkg/__init__.py", 2, False)
    assert found["numpy"] == ("../ext/vendored.py", 1, False)


def test_unparsable_files_are_reported_not_fatal_and_caches_are_skipped(tmp_path: Path) -> None:
    _write(tmp_path, {
        "model/model.py": "import requests\n",
        "model/broken.py": "def f(:\n",
        "model/.venv/lib/site.py": "import fastapi\n",
        "model/__pycache__/x.py": "import fastapi\n",
        "model/node_modules/y.py": "import fastapi\n",
    })
    result = scan(tmp_path, [tmp_path / "model"])
    assert {s.module for s in result.sites} == {"requests"}
    assert result.unscanned == ("model/broken.py: SyntaxError (line 1)",)


def test_nothing_is_executed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    _write(tmp_path, {"model/model.py": f"open({str(marker)!r}, 'w').close()\nimport yaml\n"})
    assert {s.module for s in scan(tmp_path, [tmp_path / "model"]).sites} == {"yaml"}
    assert not marker.exists()


def test_top_level_names(tmp_path: Path) -> None:
    _write(tmp_path, {"a.py": "", "pkg/__init__.py": "", "ns/mod.py": "", "ext.cpython-311-x86_64-linux-gnu.so": "",
                      ".hidden.py": "", "README.md": ""})
    (tmp_path / "__pycache__").mkdir()
    assert top_level_names(tmp_path) == {"a", "pkg", "ns", "ext"}
    assert top_level_names(tmp_path / "missing") == set()
