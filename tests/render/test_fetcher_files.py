"""The download stages copy the downloader alone, so a change to the server or the prefetch (or a
pack upgrade that leaves the downloader alone) keeps every baked weight layer cached, locally and
through --cache-from on a CI runner. The copy must still run on its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import packager
from packager.render.fetcher_files import fetcher_closure, write_fetcher

ROOT = Path(packager.__file__).parent


def rel(paths: list[Path]) -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in paths}


def test_the_closure_is_the_downloader_not_the_runtime() -> None:
    files = rel(fetcher_closure())
    assert {"runtime/transfer/__main__.py", "runtime/transfer/engine.py", "runtime/external_data.py",
            "runtime/manifest.py", "constants.py"} <= files
    assert not any(f.startswith(("runtime/serving/", "runtime/prefetch/", "runtime/dev/")) for f in files)
    assert "runtime/entrypoint.py" not in files and "__init__.py" not in files  # written version-free
    # Every runtime module that is not in the closure could change without touching a weight layer.
    assert len(files) < len(list((ROOT / "runtime").rglob("*.py")))


def test_the_copy_runs_on_its_own_and_carries_no_version(tmp_path: Path) -> None:
    write_fetcher(tmp_path)
    init = (tmp_path / "packager" / "__init__.py").read_text()
    assert packager.__version__ not in init and "__version__" not in init
    probe = ("import packager, packager.runtime.transfer.__main__ as m, packager.runtime.external_data as e;"
             f"assert packager.__file__.startswith({str(tmp_path)!r}), packager.__file__;"
             "assert callable(m.main) and callable(e.main)")
    done = subprocess.run([sys.executable, "-s", "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, check=False)
    assert done.returncode == 0, done.stderr
    help_run = subprocess.run([sys.executable, "-s", "-m", "packager.runtime.transfer", "--help"], cwd=tmp_path,
                              capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path)}, check=False)
    assert help_run.returncode == 0 and "manifest" in help_run.stdout, help_run.stderr
