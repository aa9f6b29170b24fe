"""ModelBase files (Truss's python-config DX): validated like Truss's ModelBase (a `predict`
endpoint, no dependencies, any name), turned into a truss by the chainlet generator at a stable
place in pack's cache, config from the class's declared attributes, problems reported in the
user's file, and served at Truss's model route by pack's runtime."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest
import yaml

from chains.framework import errors, registry
from chains.loading import load_model
from packager import api
from packager.chains_codegen.generate import ChainletTruss, GeneratedChain
from packager.chains_codegen.local_run import start_local
from packager.chains_codegen.model_source import generate_model_truss, model_truss_dir
from packager.cli.main import main
from packager.config import load_config

FULL = """
    import truss_chains as chains
    from truss import truss_config


    class Model(chains.ModelBase):
        remote_config = chains.RemoteConfig(
            name="My Model v1",
            docker_image=chains.DockerImage(
                base_image=chains.CustomImage(image="pack-base:bookworm-py311"),
                pip_requirements=["six==1.16.0"],
                apt_requirements=["curl"],
            ),
            compute=chains.Compute(cpu_count=2, memory="3Gi", gpu="L4"),
            assets=chains.Assets(
                secret_keys=["hf_access_token"],
                cached=[truss_config.ModelRepo(repo_id="acme/tiny", revision="main", use_volume=True,
                                               volume_folder="tiny")],
            ),
            options=chains.ChainletOptions(env_variables={"GREETING": "hi"}),
        )

        def __init__(self, context: chains.DeploymentContext = chains.depends_context()) -> None:
            self._greeting = "hi"

        def predict(self, text: str, times: int = 1) -> str:
            return " ".join([text] * times)
"""

TINY = """
    import truss_chains as chains


    class Echo(chains.ModelBase):
        def __init__(self, context: chains.DeploymentContext = chains.depends_context()) -> None:
            self._count = 0

        async def predict(self, text: str, times: int = 2) -> list[str]:
            self._count += 1
            return [text.upper()] * times
"""


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


# --- validation ----------------------------------------------------------------------------------
def test_model_base_is_validated_like_truss(chain_file) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a sync predict is Truss's own template: no warning
        loaded = load_model(chain_file(FULL))
    descriptor = registry.descriptor(loaded.model)
    assert loaded.model.__name__ == "Model"
    assert descriptor.endpoint.name == "predict"
    assert [a.name for a in descriptor.endpoint.input_args] == ["text", "times"]
    assert descriptor.display_name == "My Model v1"  # any name (no chainlet regex), as in Truss
    assert descriptor.has_context and descriptor.dependencies == ()
    assert loaded.model._chains_entrypoint


def test_model_base_errors(chain_file) -> None:
    import chains

    path = chain_file("""
        import truss_chains as chains


        class Helper(chains.ChainletBase):
            async def run_remote(self) -> int:
                return 1


        class NoPredict(chains.ModelBase):
            async def run_remote(self) -> int:
                return 1


        class WithDeps(chains.ModelBase):
            def __init__(self, helper: Helper = chains.depends(Helper)) -> None:
                pass

            def predict(self, x: int) -> int:
                return x


        class Untyped(chains.ModelBase):
            def predict(self, x):
                return x
    """)
    with pytest.raises(chains.ChainsUsageError) as info:
        load_model(path)
    text = str(info.value)
    assert "(NoPredict) [kind: MISSING_API_ERROR]: MODELs must have a `predict` method." in text
    assert "(WithDeps.__init__) [kind: TYPE_ERROR]: `__init__` parameter `helper`: the only supported " \
           "argument to `__init__` for MODELs is the optional `context=chains.depends_context()`" in text
    assert "(Untyped.predict) [kind: IO_TYPE_ERROR]: parameter `x` has no type annotation; every " \
           "parameter of predict must be annotated" in text
    assert [e.location for e in info.value.validation_errors][:1] == ["NoPredict"]


def test_a_model_cannot_be_a_dependency(chain_file) -> None:
    import chains

    path = chain_file("""
        import truss_chains as chains


        class Leaf(chains.ModelBase):
            def predict(self, x: int) -> int:
                return x


        class Caller(chains.ChainletBase):
            def __init__(self, leaf: Leaf = chains.depends(Leaf)) -> None:
                pass

            async def run_remote(self) -> int:
                return 1
    """)
    with pytest.raises(chains.ChainsUsageError,
                       match="`Leaf` is a model \\(ModelBase\\), which cannot be a dependency"):
        load_model(path)


def test_exactly_one_model_class(chain_file) -> None:
    none = chain_file("""
        import truss_chains as chains


        class Only(chains.ChainletBase):
            async def run_remote(self) -> int:
                return 1
    """)
    with pytest.raises(ValueError, match="no class inherits from `chains.ModelBase`"):
        load_model(none)
    two = chain_file("""
        import truss_chains as chains


        class First(chains.ModelBase):
            def predict(self, x: int) -> int:
                return x


        class Second(chains.ModelBase):
            def predict(self, x: int) -> int:
                return x
    """)
    with pytest.raises(ValueError, match="several classes inherit from ModelBase \\(First, Second\\)"):
        load_model(two)


# --- the generated truss -------------------------------------------------------------------------
def test_config_comes_from_the_class_attributes(chain_file, cache_home: Path) -> None:
    source = chain_file(FULL)
    model = generate_model_truss(source)
    assert model.truss_dir == model_truss_dir(source)
    assert model.truss_dir.is_relative_to(cache_home / "pack" / "models")
    assert not model.truss_dir.is_relative_to(source.parent)
    config = load_config(model.truss_dir).config
    assert config.model_name == "My Model v1"  # Truss: the display name, no suffix
    assert config.base_image is not None and config.base_image.image == "pack-base:bookworm-py311"
    assert config.requirements[0] == "six==1.16.0"
    assert config.system_packages == ["curl"]
    assert config.resources.cpu == "2" and config.resources.memory == "3Gi"
    assert config.resources.accelerator.accelerator.value == "L4"
    assert set(config.secrets) == {"hf_access_token", "baseten_chain_api_key"}
    assert config.model_cache[0].repo_id == "acme/tiny" and config.model_cache[0].volume_folder == "tiny"
    assert config.environment_variables == {"GREETING": "hi"}
    assert config.model_class_name == "TrussChainletModel"
    code = (model.truss_dir / "model" / "model.py").read_text()
    assert "self._chainlet.predict(**glue.present_fields(inputs))" in code
    assert (model.truss_dir / "packages" / f"{source.stem}.py").read_text() == source.read_text()


def test_same_file_same_place_same_bytes_and_the_lock_survives(chain_file) -> None:
    source = chain_file(TINY)
    first = generate_model_truss(source)
    files = {p.relative_to(first.truss_dir): p.read_bytes() for p in first.truss_dir.rglob("*") if p.is_file()}
    (first.truss_dir / "pack.lock").write_text("{}")
    second = generate_model_truss(source)
    assert second.truss_dir == first.truss_dir
    again = {p.relative_to(second.truss_dir): p.read_bytes() for p in second.truss_dir.rglob("*")
             if p.is_file() and p.name != "pack.lock"}
    assert again == files
    assert (second.truss_dir / "pack.lock").read_text() == "{}"
    assert [p.name for p in second.truss_dir.parent.iterdir()] == [second.truss_dir.name]  # no leftovers


def test_check_reports_problems_in_the_users_file(chain_file, capsys) -> None:
    bad_memory = chain_file("""
        import truss_chains as chains


        class Model(chains.ModelBase):
            remote_config = chains.RemoteConfig(compute=chains.Compute(memory="2GB"))

            def predict(self, x: int) -> int:
                return x
    """)
    assert main(["check", str(bad_memory)]) == 1
    err = capsys.readouterr().err
    assert f"{bad_memory}:5: error: resources.memory: invalid memory unit `GB` in `2GB`" in err
    assert "set it in the class's remote_config" in err

    untyped = chain_file("""
        import truss_chains as chains


        class UntypedModel(chains.ModelBase):
            def predict(self, x):
                return x
    """)
    assert main(["check", str(untyped), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["errors"][0]["file"] == str(untyped) and report["errors"][0]["line"] == 6
    assert report["errors"][0]["path"] == "UntypedModel.predict"

    broken = chain_file("import truss_chains as chains\n\nclass Broken(chains.ModelBase:\n    pass\n")
    assert main(["check", str(broken)]) == 1
    assert f"{broken}:3:" in capsys.readouterr().err

    raising = chain_file("import truss_chains as chains\nimport not_installed_anywhere\n")
    assert main(["check", str(raising)]) == 1
    err = capsys.readouterr().err
    assert f"{raising}:2: error: importing the file raised ModuleNotFoundError" in err

    reserved = bad_memory.parent / "model.py"
    reserved.write_text(bad_memory.read_text())
    assert main(["check", str(reserved)]) == 1
    assert "the module name `model` is reserved" in capsys.readouterr().err

    assert main(["check", str(bad_memory.parent / "absent.py")]) == 1
    assert "no such model file" in capsys.readouterr().err


def test_check_render_and_build_a_model_file(chain_file, tmp_path: Path, monkeypatch, capsys) -> None:
    from packager.engine import FakeEngine

    source = chain_file(TINY)
    assert main(["check", str(source)]) == 0
    out = capsys.readouterr().out
    assert f"{source} is valid: ModelBase `Echo` -> truss {model_truss_dir(source)}" in out
    assert main(["render", str(source), "-o", str(tmp_path / "ctx")]) == 0
    image_config = yaml.safe_load((tmp_path / "ctx" / "app" / "config.yaml").read_text())
    assert image_config["model_name"] == "Echo"
    assert main(["render", str(source), "-o", str(tmp_path / "ctx"), "--config", "x.yaml"]) == 1
    assert "--config cannot be used with the model file" in capsys.readouterr().err

    engine = FakeEngine()
    first = api.build(source, engine=engine)
    second = api.build(source, engine=engine)
    # The truss is generated at the same place: the second build's context is the first's.
    assert first.context.path == second.context.path and first.context.digest == second.context.digest
    assert len(second.image.built_steps) == 0 and second.image.cached_steps


def test_served_at_the_model_route_with_typed_arguments(chain_file, tmp_path: Path) -> None:
    source = chain_file(TINY)
    model = generate_model_truss(source)
    truss = ChainletTruss("Echo", "Echo", "Echo", model.truss_dir, (), (source.name,), False)
    chain = GeneratedChain("Echo", "Echo", source, model.truss_dir.parent, (truss,))
    with start_local(chain, workdir=tmp_path / "run", timeout=60) as run:
        url = run.entrypoint_url
        assert url.endswith("/v1/models/model:predict")

        def post(body: dict) -> tuple[int, object]:
            request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()

        assert post({"text": "hi", "times": 3}) == (200, ["HI", "HI", "HI"])
        assert post({"text": "yo"}) == (200, ["YO", "YO"])  # the Python default applies
        status, _ = post({"times": 1})
        assert 400 <= status < 500  # `text` is required


WEBSOCKET = """
    import truss_chains as chains


    class Shouter(chains.ModelBase):
        async def predict(self, websocket: chains.WebSocketProtocol) -> None:
            while True:
                text = await websocket.receive_text()
                if text == "done":
                    return
                await websocket.send_text(text.upper())
"""


def test_a_websocket_model_file_is_served_at_the_websocket_route(chain_file, tmp_path: Path) -> None:
    """A ModelBase whose predict takes a WebSocketProtocol (Truss 0.18.30 accepts it): its truss
    defines `websocket`, served at /v1/websocket by the runtime."""
    from websockets.exceptions import ConnectionClosedOK
    from websockets.sync.client import connect

    source = chain_file(WEBSOCKET)
    model = generate_model_truss(source)
    code = (model.truss_dir / "model" / "model.py").read_text()
    assert "async def websocket(self, websocket: Any) -> None:" in code and "def predict(" not in code
    loaded = load_config(model.truss_dir)
    assert loaded.model_class is not None and loaded.model_class.defines_websocket
    truss = ChainletTruss("Shouter", "Shouter", "Shouter", model.truss_dir, (), (source.name,), False, websocket=True)
    chain = GeneratedChain("Shouter", "Shouter", source, model.truss_dir.parent, (truss,))
    with start_local(chain, workdir=tmp_path / "run", timeout=60) as run:
        assert run.entrypoint_url.endswith("/v1/websocket")
        with connect(run.entrypoint_url, proxy=None, open_timeout=10) as ws:
            for text in ("hello", "é twice"):
                ws.send(text)
                assert ws.recv(timeout=30) == text.upper()
            ws.send("done")
            with pytest.raises(ConnectionClosedOK):  # predict returned: closed with 1000
                ws.recv(timeout=30)
        assert ws.close_code == 1000
        # The predict route is not what serves it.
        request = urllib.request.Request(run.entrypoint.url + "/v1/models/model:predict", data=b"{}")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 404


@pytest.fixture(autouse=True)
def _no_pending_errors():
    yield
    errors.take()
