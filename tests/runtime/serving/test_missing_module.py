"""A ModuleNotFoundError while the model imports or loads: the log names the module, the file and
line that imported it, and the fix (the pip name to add to `requirements`); the process exits 1."""

from __future__ import annotations

import importlib.util
import os
import sys
import textwrap
from pathlib import Path

import pytest

from packager.runtime.serving.missing_module import explain
from tests.runtime.harness import REPO_ROOT, make_app


def _absent(*modules: str) -> None:
    present = [m for m in modules if importlib.util.find_spec(m) is not None]
    if present:
        pytest.skip(f"{present} installed in this interpreter; the test needs them missing")


def test_a_top_level_import_names_module_file_line_and_pip_name(tmp_path, runtimes) -> None:
    _absent("cv2")
    rt = runtimes(make_app(tmp_path, """\
        import os
        import cv2


        class Model:
            def predict(self, x):
                return x
        """))
    assert rt.wait_exit(30) == 1
    logs = rt.logs()
    model_py = os.path.join(str(rt.app.root), "model", "model.py")
    assert "model load failed: ModuleNotFoundError: No module named 'cv2'" in logs
    assert f"missing module `cv2`, imported at {model_py}:2: import cv2" in logs
    assert "fix: add `opencv-python` (the pip name of `cv2`) to `requirements` in config.yaml" in logs
    # The explanation is the last thing logged before the timeline, and the timeline carries it.
    assert rt.log_records()[-1]["message"].splitlines()[-1].startswith("fix: add `opencv-python`")
    assert "opencv-python" in rt.timeline()["failure"]


def test_an_import_inside_load_is_located_there(tmp_path, runtimes) -> None:
    _absent("PIL")
    rt = runtimes(make_app(tmp_path, """\
        class Model:
            def load(self):
                from PIL import Image
                self.image = Image

            def predict(self, x):
                return x
        """), NUM_LOAD_RETRIES_TRUSS="0")
    assert rt.wait_exit(30) == 1
    logs = rt.logs()
    assert f"imported at {rt.app.root / 'model' / 'model.py'}:3: from PIL import Image" in logs
    assert "fix: add `pillow` (the pip name of `PIL`)" in logs


def test_an_installed_package_missing_its_dependency_names_both_lines(tmp_path, runtimes) -> None:
    _absent("skimage")
    site = tmp_path / "site"
    (site / "thirdparty").mkdir(parents=True)
    (site / "thirdparty" / "__init__.py").write_text("import math\nimport skimage.io\n")
    app = make_app(tmp_path, """\
        import thirdparty


        class Model:
            def predict(self, x):
                return x
        """)
    rt = runtimes(app, PYTHONPATH=os.pathsep.join([REPO_ROOT, str(site)]))
    assert rt.wait_exit(30) == 1
    logs = rt.logs()
    assert f"missing module `skimage`, imported at {site / 'thirdparty' / '__init__.py'}:2: import skimage.io" in logs
    assert f"reached from the truss's code at {app.root / 'model' / 'model.py'}:1: import thirdparty" in logs
    assert "fix: add `scikit-image` (the pip name of `skimage`)" in logs


def test_other_load_failures_get_no_module_advice(tmp_path, runtimes) -> None:
    rt = runtimes(make_app(tmp_path, "raise ImportError('torch is missing')\n"))
    assert rt.wait_exit(30) == 1
    assert "ImportError: torch is missing" in rt.logs() and "fix: add" not in rt.logs()


# --- explain(), in process ---------------------------------------------------------------------
def _raise_from(tmp_path: Path, code: str) -> BaseException:
    """Run `code` as the module model.py under tmp_path/app/model and return what it raised."""
    path = tmp_path / "app" / "model" / "model.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code))
    spec = importlib.util.spec_from_file_location("pack_test_missing_model", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - what the test inspects
        return exc
    finally:
        sys.modules.pop("pack_test_missing_model", None)
    raise AssertionError("the code raised nothing")


def test_a_chained_error_is_traced_to_the_missing_module(tmp_path: Path) -> None:
    _absent("bs4")
    exc = _raise_from(tmp_path, """\
        try:
            import bs4
        except ImportError as e:
            raise RuntimeError("this model needs an HTML parser") from e
        """)
    missing = explain(exc, [str(tmp_path / "app")])
    assert missing is not None and missing.module == "bs4"
    assert (missing.importer.filename, missing.importer.lineno) == (str(tmp_path / "app" / "model" / "model.py"), 2)
    assert missing.truss_line is None  # the importer is the truss's own line
    assert "fix: add `beautifulsoup4` (the pip name of `bs4`)" in missing.message()


def test_unknown_names_and_missing_submodules_get_the_right_fix(tmp_path: Path) -> None:
    unknown = explain(_raise_from(tmp_path, "import pack_no_such_module_xyz\n"), [str(tmp_path / "app")])
    assert unknown is not None
    assert "fix: add `pack-no-such-module-xyz` to `requirements` in config.yaml (if that is its name on PyPI)" \
        in unknown.message()
    assert "if `pack_no_such_module_xyz` is the truss's own module, put it beside model.py or under packages/" \
        in unknown.message()
    submodule = explain(_raise_from(tmp_path, "import json.no_such_part\n"), [str(tmp_path / "app")])
    assert submodule is not None and submodule.module == "json.no_such_part"
    assert "`json` is installed but has no module `json.no_such_part`" in submodule.message()


def test_no_explanation_without_a_module_not_found(tmp_path: Path) -> None:
    assert explain(_raise_from(tmp_path, "raise ValueError('x')\n"), [str(tmp_path)]) is None
    assert explain(_raise_from(tmp_path, "raise ImportError('x')\n"), [str(tmp_path)]) is None
