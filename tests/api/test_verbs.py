"""The library API's build, push, run and chains verbs over a FakeEngine: no Docker, the same code
paths the CLI takes. Readiness is real HTTP (tests/fixtures/ready_server.py): the fake container
is "ready" when something answers the readiness route on its port, as the model server would.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from packager import api, runner
from packager.engine import BuiltImage, FakeEngine
from packager.errors import RegistryError
from tests.fixtures.docker_env import free_port

BASE = "pack-base:bookworm-py311"
MODEL = "class Model:\n    def predict(self, x):\n        return x\n"
CHAIN = '''\
import truss_chains as chains


class Shout(chains.ChainletBase):
    async def run_remote(self, text: str) -> str:
        return text.upper()


@chains.mark_entrypoint
class Greeter(chains.ChainletBase):
    def __init__(self, shout: Shout = chains.depends(Shout)) -> None:
        self._shout = shout

    async def run_remote(self, name: str) -> str:
        return await self._shout.run_remote(f"hello {name}")
'''


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # build records, contexts
    fake = FakeEngine()
    fake.images[BASE] = BuiltImage("sha256:" + "b" * 64, (BASE,), 1)
    return fake


def truss(root: Path, extra: str = "") -> Path:
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.py").write_text(MODEL)
    (root / "config.yaml").write_text(f"model_name: verbs\npython_version: py311\n{extra}")
    return root


def test_build_renders_builds_and_records(engine: FakeEngine, tmp_path: Path) -> None:
    root = truss(tmp_path / "t")
    first = api.build(root, api.BuildOptions(base_image=BASE), engine=engine)
    assert engine.builds[-1].context_dir == first.context.path and first.image.built_steps
    again = api.build(root, api.BuildOptions(base_image=BASE), engine=engine)
    assert again.image.id == first.image.id and not again.image.built_steps  # every step cached
    record = api.last_build(root)
    assert record is not None and record.base_image == BASE and record.image_id == first.image.id


def test_push_tags_pushes_and_reports_the_digest(engine: FakeEngine, tmp_path: Path) -> None:
    result, pushed = api.push(truss(tmp_path / "t"), api.BuildOptions(base_image=BASE),
                              image_ref="127.0.0.1:5000/team/verbs:v1", engine=engine)
    request = engine.pushes[-1]
    assert (request.image, request.repository, request.tag) == (result.image.id, "127.0.0.1:5000/team/verbs", "v1")
    assert pushed.digest.startswith("sha256:") and pushed.pinned == f"127.0.0.1:5000/team/verbs@{pushed.digest}"
    assert engine.registry["127.0.0.1:5000/team/verbs:v1"] == result.image


def test_a_registry_refusal_is_a_registry_error(engine: FakeEngine, tmp_path: Path) -> None:
    engine.push_error = "unauthorized: authentication required"
    with pytest.raises(RegistryError) as info:
        api.push(truss(tmp_path / "t"), api.BuildOptions(base_image=BASE),
                 image_ref="127.0.0.1:5000/team/verbs:v1", engine=engine)
    assert "authentication required" in str(info.value) and info.value.hint


def test_run_starts_the_container_with_secrets_env_and_cache(engine: FakeEngine, tmp_path: Path,
                                                              ready_port: int) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "api_key").write_text("from-dir")
    root = truss(tmp_path / "t", "secrets:\n  api_key: null\n  other: null\n")
    result = api.run(root, api.BuildOptions(base_image=BASE), port=ready_port, secrets_dir=secrets,
                     secrets={"other": "from-host"}, env={"GREETING": "hi"}, timeout=10, engine=engine)
    container = engine.containers[-1]
    assert result.running.url == f"http://127.0.0.1:{ready_port}" and container.image == result.build.image.id
    assert container.name == "pack-verbs" and container.env["GREETING"] == "hi"
    assert set(container.secrets) == {"/secrets/api_key", "/secrets/other"}
    assert container.volumes == {"pack-weights-verbs": "/var/lib/pack/cache"}


def test_run_reuses_the_base_image_of_the_last_build(engine: FakeEngine, tmp_path: Path) -> None:
    root = truss(tmp_path / "t")
    api.build(root, api.BuildOptions(base_image=BASE), engine=engine)
    options, reused = api.run_options(api.resolve(root), api.BuildOptions())
    assert reused == BASE and options.base_image == BASE
    assert api.run_options(api.resolve(root),
                           api.BuildOptions(base_image="x:1")) == (api.BuildOptions(base_image="x:1"), None)


class _Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200 if self.path == runner.READY_PATH else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ready_ports() -> Iterator[int]:
    """Two consecutive ports answering readiness (a chain's chainlets use base, base+1)."""
    for _ in range(20):
        base = free_port()
        servers = []
        try:
            for port in (base, base + 1):
                servers.append(http.server.ThreadingHTTPServer(("127.0.0.1", port), _Ready))
        except OSError:
            for server in servers:
                server.server_close()
            continue
        for server in servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        yield base
        for server in servers:
            server.shutdown()
            server.server_close()
        return
    pytest.fail("no two consecutive free ports")


def test_chains_render_build_push_and_run(engine: FakeEngine, tmp_path: Path, ready_ports: int) -> None:
    source = tmp_path / "greet_chain.py"
    source.write_text(CHAIN)
    chain = api.chains_render(source, tmp_path / "out")
    assert [c.name for c in chain.chainlets] == ["Shout", "Greeter"]  # dependencies first
    results = api.chains_build(chain, api.BuildOptions(base_image=BASE), engine=engine)
    assert [b.context_dir for b in engine.builds] == [r.context.path for r in results]
    pushed = api.chains_push(chain, results, "127.0.0.1:5000/team", tag="v1", engine=engine)
    assert [p.image.split("@")[0] for p in pushed] == [f"127.0.0.1:5000/team/{c.model_name.lower()}:v1"
                                                      for c in chain.chainlets]
    with pytest.raises(Exception, match="no chainlet of this chain"):
        api.dependency_urls(chain, ["Nope=http://127.0.0.1:1"])
    overrides = api.dependency_urls(chain, ["Shout=http://127.0.0.1:9/gateway"])
    run = api.chains_run(chain, results, base_port=ready_ports, url_overrides=overrides, timeout=10, engine=engine)
    assert [r.url for _, r in run.chainlets] == [f"http://127.0.0.1:{ready_ports + i}" for i in range(2)]
    assert run.entrypoint_url == f"http://127.0.0.1:{ready_ports + 1}/v1/models/model:predict"
    config = engine.containers[-1].env["PACK_CHAINS_DYNAMIC_CONFIG"]
    assert '"Shout": {"predict_url": "http://127.0.0.1:9/gateway"}' in config
    run.stop()
    assert {c.state for c in engine.containers} == {"removed"}  # stopped, then removed
