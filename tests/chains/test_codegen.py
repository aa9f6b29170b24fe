"""`pack chains render`: one truss per chainlet whose config passes pack's loader and whose
generated model.py imports and type-checks; only the needed code is copied; output is
deterministic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from packager.chains_codegen import render_chain
from packager.cli.main import cli, main
from packager.config import load_config

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_trusses" / "chains" / "text_chain" / "text_chain.py"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("render")
    return render_chain(SAMPLE, out)


def test_one_truss_per_chainlet_with_truss_config(rendered):
    assert rendered.chain_name == "text-chain"
    assert [c.name for c in rendered.chainlets] == ["ModelInfo", "WordStreamer", "TextChain"]
    info = rendered.chainlet("ModelInfo")
    assert info.path == rendered.root / "chainlet_ModelInfo"
    config = load_config(info.path).config
    assert config.model_class_name == "TrussChainletModel"
    assert config.volume_mode
    assert config.model_cache[0].volume_folder == "minilm"
    assert config.model_cache[0].ignore_patterns[0] == "*.bin"
    assert set(config.secrets) == {"hf_access_token", "baseten_chain_api_key"}
    assert all(v is None for v in config.secrets.values())
    assert config.resources.memory == "1Gi"
    assert config.environment_variables == {"OPENBLAS_NUM_THREADS": "1"}
    assert any(r.startswith("pydantic==") for r in config.requirements)
    entry = load_config(rendered.chainlet("TextChain").path).config
    assert entry.runtime.predict_concurrency == 4
    services = entry.model_metadata["chains_metadata"]["chainlet_to_service"]
    assert services["ModelInfo"] == {"name": "ModelInfo", "display_name": "model-info", "options": {
        "retries": 3, "timeout_sec": 600.0, "use_binary": False, "concurrency_limit": 300}}
    assert services["WordStreamer"]["options"]["timeout_sec"] == 30.0
    # `pack check` accepts every generated truss.
    for c in rendered.chainlets:
        assert main(["check", str(c.path)]) == 0


def test_only_needed_code_is_copied(rendered):
    packages = rendered.chainlet("TextChain").path / "packages"
    assert (packages / "text_chain.py").is_file()
    assert (packages / "text_utils.py").is_file()
    assert not (packages / "unused_helper.py").exists()
    assert (packages / "chains" / "rpc.py").is_file()
    assert (packages / "truss_chains" / "__init__.py").is_file()
    assert not (packages / "chains" / "_shims").exists()
    # pack's chains modules and nothing else (no lint configuration, no tool caches).
    chains_dir = REPO / "chains"
    assert sorted(p.relative_to(packages / "chains") for p in (packages / "chains").rglob("*") if p.is_file()) == \
        sorted(p.relative_to(chains_dir) for p in chains_dir.rglob("*.py") if "_shims" not in p.parts)
    manifest = json.loads((rendered.root / "chain.json").read_text())
    assert manifest["chainlets"][-1]["included_files"] == ["text_chain.py", "text_utils.py"]


def test_split_workspace_copies_per_chainlet_closure(tmp_path):
    ws = tmp_path / "ws_split"
    (ws / "lib").mkdir(parents=True)
    (ws / "lib" / "__init__.py").write_text("")
    (ws / "lib" / "text.py").write_text("def shout(s: str) -> str:\n    return s.upper()\n")
    (ws / "worker_mod.py").write_text(
        "import chains\nfrom lib.text import shout\n\n\n"
        "class SplitWorker(chains.ChainletBase):\n"
        "    async def run_remote(self, s: str) -> str:\n        return shout(s)\n")
    (ws / "split_entry.py").write_text(
        "import chains\nimport worker_mod\n\n\n@chains.mark_entrypoint\n"
        "class SplitEntry(chains.ChainletBase):\n"
        "    def __init__(self, w=chains.depends(worker_mod.SplitWorker)) -> None:\n        self.w = w\n\n"
        "    async def run_remote(self, s: str) -> str:\n        return await self.w.run_remote(s)\n")
    try:
        chain = render_chain(ws / "split_entry.py", tmp_path / "out")
    finally:
        for name in ("split_entry", "worker_mod", "lib", "lib.text"):
            sys.modules.pop(name, None)
    worker = chain.chainlet("SplitWorker")
    assert worker.included_files == ("lib/__init__.py", "lib/text.py", "worker_mod.py")
    assert chain.chainlet("SplitEntry").included_files == (
        "lib/__init__.py", "lib/text.py", "split_entry.py", "worker_mod.py")


def test_rendering_is_deterministic(rendered, tmp_path):
    again = render_chain(SAMPLE, tmp_path)
    for a, b in zip(rendered.chainlets, again.chainlets, strict=True):
        assert a.model_name == b.model_name
        for rel in ("config.yaml", "model/model.py"):
            assert (a.path / rel).read_bytes() == (b.path / rel).read_bytes()


IMPORT_CHECK = """
import importlib.util, json, sys
truss = sys.argv[1]
sys.path[:0] = [truss + "/packages"]
spec = importlib.util.spec_from_file_location("generated_model", truss + "/model/model.py")
module = importlib.util.module_from_spec(spec)
sys.modules["generated_model"] = module
spec.loader.exec_module(module)
import chains
assert chains.__file__.startswith(truss), chains.__file__
out = {"class": module.TrussChainletModel.__name__,
       "inputs": {n: getattr(module, n).model_json_schema().get("properties", {})
                  for n in dir(module) if n.endswith("Input")}}
print(json.dumps(out))
"""


def test_generated_code_imports_from_its_own_packages(rendered):
    for c in rendered.chainlets:
        result = subprocess.run([sys.executable, "-c", IMPORT_CHECK, str(c.path)], capture_output=True,
                                text=True, cwd=str(c.path), env={**os.environ, "PYTHONPATH": ""},
                                timeout=60)
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)
        assert found["class"] == "TrussChainletModel"
        if c.name == "TextChain":  # the schema carries real defaults (never a nullable null)
            inputs = found["inputs"]
            assert inputs["ModelInfoInput"]["repo"]["default"] == "sentence-transformers/all-MiniLM-L6-v2"
            assert inputs["WordStreamerInput"]["upper"] == {"default": False, "title": "Upper", "type": "boolean"}


def test_generated_stub_signatures_and_models(rendered):
    code = (rendered.chainlet("TextChain").path / "model" / "model.py").read_text()
    assert "class ModelInfo(rpc.StubBase):" in code
    assert ("async def run_remote(self, repo: str = 'sentence-transformers/all-MiniLM-L6-v2') -> "
            "text_chain.ModelSummary:") in code
    assert "async def run_remote(self, text: str, upper: bool = False) -> AsyncIterator[str]:" in code
    assert "class TextChainOutput(pydantic.RootModel[text_chain.ChainAnswer]):" in code
    assert code.index("self._lazy_data_resolver.block_until_download_complete()") < code.index("glue.construct(")
    compile(code, "model.py", "exec")


def test_generated_code_type_checks(rendered, tmp_path):
    # mypy comes with the test extras (pyproject.toml), as the static checks need it too.
    for c in rendered.chainlets:
        result = subprocess.run(
            [sys.executable, "-m", "mypy", "--follow-imports=silent", "--ignore-missing-imports", "--no-error-summary",
             "--cache-dir", str(tmp_path / ".mypy_cache"), "model/model.py"],
            cwd=str(c.path), env={**os.environ, "MYPYPATH": str(c.path / "packages")},
            capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr


def test_missing_dependency_url_names_file_and_key(tmp_path, monkeypatch):
    import chains
    from chains import glue

    monkeypatch.delenv("PACK_CHAINS_DYNAMIC_CONFIG", raising=False)
    monkeypatch.setenv("PACK_DYNAMIC_CONFIG_DIR", str(tmp_path))
    meta = {"chainlet_to_service": {"Dep": {"name": "Dep", "display_name": "dep-x", "options": {}}}}
    with pytest.raises(chains.MissingDependencyError, match=f"{tmp_path}/dynamic_chainlet_config does not exist"):
        glue.resolve_services(meta)
    (tmp_path / "dynamic_chainlet_config").write_text(json.dumps({"other": {"predict_url": "http://x"}}))
    with pytest.raises(chains.MissingDependencyError, match="has no key `dep-x`"):
        glue.resolve_services(meta)
    (tmp_path / "dynamic_chainlet_config").write_text(json.dumps({"dep-x": {"predict_url": "http://h/p"}}))
    assert glue.resolve_services(meta)["Dep"].predict_url == "http://h/p"


def test_cli_render(tmp_path, capsys):
    from packager.cli.chains_cmds import chains_group

    if "chains" not in cli.commands:
        cli.add_command(chains_group)
    assert main(["chains", "render", str(SAMPLE), "-o", str(tmp_path), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["entrypoint"] == "TextChain"
    assert main(["chains", "render", str(tmp_path / "nope.py"), "-o", str(tmp_path)]) != 0
    bad = tmp_path / "bad_chain.py"
    bad.write_text("import chains\n\n\nclass NoApi(chains.ChainletBase):\n    pass\n")
    try:
        assert main(["chains", "render", str(bad), "-o", str(tmp_path)]) == 1
    finally:
        sys.modules.pop("bad_chain", None)
    assert "bad_chain.py:4 (NoApi) [kind: MISSING_API_ERROR]" in capsys.readouterr().err


def test_cli_run_dependency_url_names_a_chainlet(tmp_path, capsys):
    from packager.cli.chains_cmds import chains_group

    if "chains" not in cli.commands:
        cli.add_command(chains_group)
    args = ["chains", "run", str(SAMPLE), "-o", str(tmp_path), "--no-docker"]
    assert main([*args, "--dependency-url", "Nope=http://127.0.0.1:1/"]) != 0
    err = capsys.readouterr().err
    assert "'Nope' is no chainlet of this chain" in err and "ModelInfo, WordStreamer, TextChain" in err
    assert main([*args, "--dependency-url", "model-info=ftp://x"]) != 0
    assert "is not CHAINLET=http(s)://" in capsys.readouterr().err


def test_config_yaml_is_a_template_rendering(rendered):
    text = (rendered.chainlet("WordStreamer").path / "config.yaml").read_text()
    assert text.startswith("# Generated by `pack chains render` from text_chain.py")
    assert yaml.safe_load(text)["model_class_filename"] == "model.py"


def test_only_chainlets_that_call_others_get_the_async_client_and_aiohttp(chain_file, tmp_path):
    """A chainlet with dependencies, or whose code names StubBase (a client of a deployed
    model), has chains/async_http.py, and so the build adds aiohttp (one of Truss's server
    packages); a chainlet that calls nothing has neither."""
    from packager.plan.build import server_packages

    source = chain_file("""
        import truss_chains as chains

        from http_leaf import HttpLeaf
        from stub_user import StubUser


        @chains.mark_entrypoint
        class HttpTop(chains.ChainletBase):
            def __init__(self, leaf=chains.depends(HttpLeaf), user=chains.depends(StubUser)) -> None:
                self.leaf, self.user = leaf, user

            async def run_remote(self, x: int) -> int:
                return await self.leaf.run_remote(x) + await self.user.run_remote(x)
    """, files={"http_leaf.py": """
        import truss_chains as chains


        class HttpLeaf(chains.ChainletBase):
            async def run_remote(self, x: int) -> int:
                return x
    """, "stub_user.py": """
        import truss_chains as chains


        class Deployed(chains.StubBase):
            async def run_remote(self, x: int) -> int:
                return await self.predict_async({"x": x})


        class StubUser(chains.ChainletBase):
            def __init__(self, context: chains.DeploymentContext = chains.depends_context()) -> None:
                self.model = Deployed.from_url("https://model.example/predict", context)

            async def run_remote(self, x: int) -> int:
                return await self.model.run_remote(x)
    """})
    chain = render_chain(source, tmp_path / "out")
    calling = {}
    for c in chain.chainlets:
        packages = [p.distribution for p in server_packages(load_config(c.path)).packages]
        has_client = (c.path / "packages" / "chains" / "async_http.py").is_file()
        assert (c.path / "packages" / "chains" / "http_client.py").is_file()  # sync calls: stdlib
        assert has_client == ("aiohttp" in packages), (c.name, packages)
        calling[c.name] = has_client
    assert calling == {"HttpLeaf": False, "StubUser": True, "HttpTop": True}
