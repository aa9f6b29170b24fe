"""Which of Truss's server packages a truss gets: imported by its code, not required by it, at
Truss's bounds; the user's requirements (by normalised name, any file kind) win."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from packager.config import load_config
from packager.plan.build import plan_build, server_packages
from packager.plan.code_imports import ImportSite
from packager.plan.model import Requirements
from packager.plan.requirements import required_distributions
from packager.plan.truss_server_packages import (
    CONSTRAINTS,
    PACK_SERVER_REQUIREMENTS,
    REQUIREMENTS,
    TRUSS_VERSION,
    pack_server_distributions,
    plan_server_packages,
    truss_distribution,
)
from packager.runtime.manifest import Manifest
from packager.runtime.pip_names import requirement_name


def _site(module: str, line: int = 1, guarded: bool = False, names: tuple[str, ...] = ()) -> ImportSite:
    return ImportSite(module, "model/model.py", line, guarded, names)


def _truss(root: Path, config: str, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(textwrap.dedent(config))
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    return root


MODEL = """\
    import fastapi
    import pydantic
    import requests
    import yaml


    class Model:
        def predict(self, x):
            return x
    """


# --- import names -> Truss's distributions -------------------------------------------------------
@pytest.mark.parametrize("module, distribution", [
    ("yaml", "pyyaml"),
    ("fastapi.responses", "fastapi"),
    ("starlette.requests", "fastapi"),  # as Truss gets it: through fastapi
    ("pydantic", "fastapi"),
    ("pydantic_core", "fastapi"),
    ("urllib3", "requests"),
    ("msgpack_numpy", "msgpack-numpy"),
    ("msgpack", "msgpack"),
    ("prometheus_client", "prometheus-client"),
    ("pythonjsonlogger.jsonlogger", "python-json-logger"),
    ("opentelemetry.trace", "opentelemetry-api"),
    ("opentelemetry.sdk.trace.export", "opentelemetry-sdk"),
    ("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "opentelemetry-exporter-otlp"),
    ("google.protobuf.message", "opentelemetry-exporter-otlp"),
    ("Cython.Build", "cython"),
    ("truss_transfer", "truss-transfer"),
    ("numpy.typing", "numpy"),
    ("torch", None),
    ("google.cloud.storage", None),
    ("os", None),
])
def test_import_names_map_to_truss_distributions(module: str, distribution: str | None) -> None:
    assert truss_distribution(module) == distribution


# --- the decision ----------------------------------------------------------------------------------
def test_imported_and_not_required_packages_are_added_at_truss_bounds() -> None:
    sites = [_site("fastapi", 1), _site("pydantic", 2), _site("requests", 3), _site("yaml", 4),
             _site("torch", 5), _site("starlette.responses", 6)]
    added = plan_server_packages(sites, frozenset())
    assert [p.distribution for p in added] == ["fastapi", "pyyaml", "requests"]
    fastapi = added[0]
    assert fastapi.requirement == "fastapi>=0.114,<0.125.0"  # requirements.txt: pydantic 1 compatible
    assert fastapi.constraint == "fastapi>=0.114,<0.136.0"
    assert [s.line for s in fastapi.imports] == [1, 2, 6]  # fastapi, pydantic, starlette
    assert added[1].requirement == "pyyaml>=6.0.0" and added[2].requirement == "requests>=2.31.0"


def test_numpy_gets_truss_requirement_bound_below_2() -> None:
    (numpy,) = plan_server_packages([_site("numpy")], frozenset())
    assert numpy.requirement == "numpy>=1.23.5,<2.0" and numpy.constraint == "numpy>=1.23.5,<3.0"


def test_user_requirements_win_by_normalised_name() -> None:
    sites = [_site("yaml"), _site("prometheus_client"), _site("pydantic"), _site("starlette"), _site("requests")]
    required = required_distributions(
        Requirements("list", ("PyYAML==6.0.1", "Prometheus_Client>=0.20", "pydantic==1.10.13 ; python_version>'3'",
                              "requests[socks] @ https://example.com/requests.whl")), Path("."))
    added = plan_server_packages(sites, required)
    # pydantic is the user's (the distribution itself); starlette still comes through fastapi.
    assert [(p.distribution, [s.module for s in p.imports]) for p in added] == [("fastapi", ["starlette"])]


def test_requiring_the_truss_package_covers_what_it_brings() -> None:
    added = plan_server_packages([_site("pydantic"), _site("starlette"), _site("urllib3")],
                                 frozenset({"fastapi", "requests"}))
    assert added == ()


def test_what_pack_server_installs_is_not_added_again() -> None:
    assert pack_server_distributions() == {"msgpack"}  # packager/runtime/server-requirements.txt
    assert "msgpack" in PACK_SERVER_REQUIREMENTS.read_text()
    added = plan_server_packages([_site("msgpack"), _site("msgpack_numpy")], frozenset(),
                                 provided=pack_server_distributions())
    assert [p.distribution for p in added] == ["msgpack-numpy"]


def test_guarded_imports_are_added_and_marked_optional() -> None:
    added = plan_server_packages([_site("uvloop", 3, guarded=True), _site("psutil", 4, guarded=True),
                                  _site("psutil", 9, guarded=False)], frozenset())
    by_name = {p.distribution: p for p in added}
    assert by_name["uvloop"].optional is True
    assert by_name["psutil"].optional is False  # one unguarded import makes it required


def test_from_import_names_resolve_namespace_packages() -> None:
    added = plan_server_packages([_site("opentelemetry", 1, names=("trace", "sdk"))], frozenset())
    assert [p.distribution for p in added] == ["opentelemetry-api", "opentelemetry-sdk"]


@pytest.mark.parametrize("line, name", [
    ("PyYAML>=6", "pyyaml"),
    ("msgpack_numpy==0.4.8", "msgpack-numpy"),
    ("Jinja2", "jinja2"),
    ("uvicorn[standard]>=0.24 ; python_version >= '3.9'", "uvicorn"),
    ("torch @ https://download.pytorch.org/whl/torch.whl", "torch"),
    ("git+https://github.com/org/repo.git#egg=my_pkg", "my-pkg"),
    ("-e git+https://github.com/org/repo.git#egg=Other.Pkg[x]", "other-pkg"),
    ("git+https://github.com/org/repo.git", None),
    ("--extra-index-url https://example.com/simple", None),
    ("./wheels/local.whl", None),
    ("# comment", None),
    ("requests  # inline comment", "requests"),
    ("", None),
])
def test_requirement_names(line: str, name: str | None) -> None:
    assert requirement_name(line) == name


def test_required_distributions_of_every_requirements_kind(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text(textwrap.dedent("""\
        version = 1
        [[package]]
        name = "my-model"
        version = "0.1.0"
        source = { virtual = "." }
        [[package]]
        name = "PyYAML"
        version = "6.0.2"
        [[package]]
        name = "charset-normalizer"
        version = "3.4.0"
        """))
    assert required_distributions(Requirements("uv_lock", source_file="uv.lock"), tmp_path) == \
        {"my-model", "pyyaml", "charset-normalizer"}
    assert required_distributions(Requirements("pip", ("numpy<2", "--index-url https://x"), "r.txt"),
                                  tmp_path) == {"numpy"}
    assert required_distributions(Requirements("pyproject", ("fastapi>=0.110",), "pyproject.toml"),
                                  tmp_path) == {"fastapi"}
    assert required_distributions(Requirements("none"), tmp_path) == frozenset()


# --- the whole truss -----------------------------------------------------------------------------
def test_a_truss_importing_server_packages_with_no_requirements(tmp_path: Path) -> None:
    root = _truss(tmp_path / "t", "model_name: t\nrequirements: []\n", {"model/model.py": MODEL})
    added = server_packages(load_config(root))
    assert added.requirement_lines == ("fastapi>=0.114,<0.125.0", "pyyaml>=6.0.0", "requests>=2.31.0")
    assert added.constraint_lines == ("fastapi>=0.114,<0.136.0", "pyyaml>=6.0.0", "requests>=2.31.0")
    plan = plan_build(load_config(root), Manifest(()))
    assert plan.server_packages == added
    assert any("fastapi>=0.114,<0.125.0" in note for note in plan.notes)
    report = added.as_dict()
    assert report["truss_version"] == TRUSS_VERSION == "0.18.30"
    assert report["packages"][0]["imports"] == [
        {"module": "fastapi", "file": "model/model.py", "line": 1, "guarded": False},
        {"module": "pydantic", "file": "model/model.py", "line": 2, "guarded": False}]


def test_requirements_file_pyproject_and_package_dirs_count(tmp_path: Path) -> None:
    root = _truss(tmp_path / "t", """\
        model_name: t
        requirements_file: requirements.txt
        external_package_dirs: [../shared]
        """, {
        "model/model.py": "import yaml\nimport helper\n",
        "requirements.txt": "pyyaml==6.0.2\n",
        "packages/helper.py": "import psutil\nimport loguru\n",
    })
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "common.py").write_text("import aiohttp\nimport helper\n")
    added = server_packages(load_config(root))
    assert {p.distribution: p.imports[0].where() for p in added.packages} == {
        "aiohttp": "../shared/common.py:1", "loguru": "packages/helper.py:2", "psutil": "packages/helper.py:1"}

    py = _truss(tmp_path / "p", "model_name: p\nrequirements_file: pyproject.toml\n", {
        "model/model.py": "import yaml\nimport requests\n",
        "pyproject.toml": '[project]\nname = "p"\nversion = "0"\ndependencies = ["requests>=2.32"]\n',
    })
    assert server_packages(load_config(py)).requirement_lines == ("pyyaml>=6.0.0",)


def test_a_local_module_named_like_a_truss_package_is_the_truss_own(tmp_path: Path) -> None:
    root = _truss(tmp_path / "t", "model_name: t\n", {"model/model.py": "import yaml\n", "model/yaml.py": "x = 1\n"})
    assert server_packages(load_config(root)).packages == ()


def test_nothing_for_trusses_that_import_none_or_run_a_docker_server(tmp_path: Path) -> None:
    plain = _truss(tmp_path / "plain", "model_name: plain\n", {
        "model/model.py": "import os\nimport json\nimport torch\n\n"
                          "class Model:\n    def predict(self, x):\n        return x\n"})
    plan = plan_build(load_config(plain), Manifest(()))
    assert plan.server_packages.packages == () and not any("Truss's server packages" in n for n in plan.notes)
    server = _truss(tmp_path / "server", """\
        model_name: server
        docker_server:
          start_command: python -m http.server 8000
          server_port: 8000
          predict_endpoint: /predict
          readiness_endpoint: /
          liveness_endpoint: /
        """, {"model/model.py": MODEL})
    assert server_packages(load_config(server)).packages == ()


def test_unparsable_code_becomes_a_note(tmp_path: Path) -> None:
    root = _truss(tmp_path / "t", "model_name: t\n", {"model/model.py": "import yaml\n", "model/bad.py": "def (\n"})
    added = server_packages(load_config(root))
    assert added.requirement_lines == ("pyyaml>=6.0.0",)
    assert added.unscanned == ("model/bad.py: SyntaxError (line 1)",)
    assert "not scanned for imports: model/bad.py: SyntaxError (line 1)" in added.notes()


# --- the data is Truss 0.18.30's ------------------------------------------------------------------
def _truss_python() -> str | None:
    for candidate in (os.environ.get("PACK_TRUSS_PYTHON"), "/opt/pack-truss-venv/bin/python"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


ORACLE = """
import json, sys
from pathlib import Path
import truss
from truss.contexts.image_builder.serving_image_builder import _parse_requirement_package_name
server = Path(truss.__file__).parent / "templates" / "server"
print(json.dumps({
    "version": truss.__version__ if hasattr(truss, "__version__") else None,
    "requirements": (server / "requirements.txt").read_text(),
    "constraints": (server / "constraints.txt").read_text(),
    "names": {line: _parse_requirement_package_name(line) for line in json.loads(sys.argv[1])},
}))
"""


@pytest.mark.truss
def test_the_lists_are_truss_0_18_30_files_and_names_parse_as_truss_parses_them() -> None:
    python = _truss_python()
    if python is None:
        pytest.skip("reference truss==0.18.30 is not installed (set PACK_TRUSS_PYTHON)")
    lines = ["PyYAML>=6", "msgpack_numpy==0.4.8", "uvicorn[standard]>=0.24 ; python_version >= '3.9'",
             "torch @ https://download.pytorch.org/whl/torch.whl", "git+https://github.com/org/repo.git",
             "--extra-index-url https://example.com/simple", "# comment", "requests  # inline", "",
             *REQUIREMENTS]
    proc = subprocess.run([python, "-c", ORACLE, json.dumps(lines)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    truss = json.loads(proc.stdout)

    def entries(text: str) -> tuple[str, ...]:
        kept = (line.split("#", 1)[0].strip() for line in text.splitlines())
        return tuple(line for line in kept if line and not line.startswith("-"))

    assert entries(truss["requirements"]) == REQUIREMENTS
    assert entries(truss["constraints"]) == CONSTRAINTS
    assert {line: requirement_name(line) for line in lines} == truss["names"]


def test_pack_own_chains_framework_adds_nothing_to_chainlets() -> None:
    # Generated chainlets (and ModelBase trusses) carry chains/, truss_chains and the truss shim
    # in packages/; they require pydantic and must pull in nothing else of Truss's list, except
    # aiohttp through the async client, which only chainlets that call others carry.
    from chains.loading import ALIAS_DIR, TRUSS_SHIM_DIR
    from packager.chains_codegen.generate import ASYNC_CLIENT_MODULE, CHAINS_PACKAGE_DIR
    from packager.plan.code_imports import scan

    code = scan(CHAINS_PACKAGE_DIR, [CHAINS_PACKAGE_DIR, ALIAS_DIR, TRUSS_SHIM_DIR])
    assert code.sites and code.unscanned == ()
    client = [site for site in code.sites if site.file == ASYNC_CLIENT_MODULE]
    rest = [site for site in code.sites if site.file != ASYNC_CLIENT_MODULE]
    assert plan_server_packages(rest, frozenset({"pydantic"})) == ()
    assert [p.distribution for p in plan_server_packages(client, frozenset({"pydantic"}))] == ["aiohttp"]
