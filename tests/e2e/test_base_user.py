"""Base images as users have them: one that ends in `USER appuser` builds (pack's steps run as
root), and the server runs as appuser; environment_variables are the image's ENV (docker
inspect, build_commands); what the server reads and writes at run time works for appuser in
bake mode (the baked Hugging Face cache) and volume mode (the prefetch into /app/model_cache and
the node cache volume)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from packager import api, runner
from packager.builder import BuildResult
from packager.engine import BuildRequest, open_engine
from packager.plan.model import BuildOptions
from tests.e2e.conftest import Hub, Resources, exec_in, start
from tests.fixtures.docker_env import unique, write_context

pytestmark = pytest.mark.docker

TINY_REPO = "pack-e2e/tiny-files"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TINY_FILES = {"a.txt": "alpha\n", "b.txt": "bravo\n"}
# Values a Dockerfile could mangle: quotes, `$` (ENV expands it), backslashes, non-ASCII.
ENV = {"GREETING": "hello from config", "TRICKY": 'say "hi" to $USER at C:\\temp, é ✓', "EMPTY": ""}

WHOAMI = '''\
import os
import pwd


def whoami():
    return {"uid": os.getuid(), "user": pwd.getpwuid(os.getuid()).pw_name, "home": os.environ.get("HOME")}
'''

PLAIN_MODEL = WHOAMI + '''

class Model:
    def predict(self, model_input):
        with open("/opt/pack-e2e/build-env") as fh:
            seen = dict(line.rstrip("\\n").split("=", 1) for line in fh if "=" in line)
        with open("/opt/pack-e2e/build-uid") as fh:
            built = {"uid": int(fh.read()), **{k: seen.get(k) for k in ("GREETING", "TRICKY", "EMPTY")}}
        return {**whoami(), "env": {k: os.environ.get(k) for k in ("GREETING", "TRICKY", "EMPTY")},
                "build": built}
'''

BAKE_MODEL = WHOAMI + '''
from huggingface_hub import hf_hub_download


class Model:
    def predict(self, model_input):
        baked = hf_hub_download("''' + TINY_REPO + '''", "a.txt", local_files_only=True)
        # Not baked: huggingface_hub downloads it into the same cache, as this user.
        fetched = hf_hub_download("''' + TINY_REPO + '''", "b.txt")
        return {**whoami(), "baked": open(baked).read(), "fetched": open(fetched).read(),
                "hub_cache": os.environ.get("HF_HUB_CACHE")}
'''

VOLUME_MODEL = WHOAMI + '''

class Model:
    def __init__(self, **kwargs):
        self._resolver = kwargs["lazy_data_resolver"]

    def load(self):
        self._resolver.block_until_download_complete()

    def predict(self, model_input):
        return {**whoami(), "a": open("/app/model_cache/tiny/a.txt").read(),
                "b": open("/app/model_cache/tiny/b.txt").read()}
'''


@pytest.fixture(scope="module")
def appuser_base(base_image: str, resources: Resources, tmp_path_factory: pytest.TempPathFactory) -> str:
    """pack-base with a user of its own, ending in `USER appuser` as many published bases do."""
    tag = resources.tag("appuser-base")
    context = write_context(
        tmp_path_factory.mktemp("appuser-base"),
        f"FROM {base_image}\nRUN useradd --create-home --uid 4321 appuser\nUSER appuser\n",
    )
    open_engine().build(BuildRequest(context, tag=tag))
    return tag


@pytest.fixture(scope="module")
def tiny_repo(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("tiny-repo")
    for name, text in TINY_FILES.items():
        (directory / name).write_text(text)
    hub.hub.add_directory(TINY_REPO, directory)
    return TINY_REPO


def _truss(root: Path, config: str, model: str) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.py").write_text(model)
    (root / "config.yaml").write_text(config)
    return root


def _build(truss: Path, base: str, resources: Resources, name: str, **options: Any) -> BuildResult:
    return api.build(truss, BuildOptions(base_image=base, **options), tag=resources.tag(name))


@pytest.fixture(scope="module")
def plain(appuser_base: str, hub: Hub, resources: Resources, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[BuildResult, Any]]:
    env = "\n".join(f"  {k}: {json.dumps(v)}" for k, v in ENV.items())
    # build_commands run as root (they write under /opt) and see the ENV.
    build_command = "mkdir -p /opt/pack-e2e && env > /opt/pack-e2e/build-env && id -u > /opt/pack-e2e/build-uid"
    config = (f"model_name: {unique('appuser-plain')}\npython_version: py311\nenvironment_variables:\n{env}\n"
              f"build_commands:\n  - \"{build_command}\"\n")
    truss = _truss(tmp_path_factory.mktemp("plain") / "t", config, PLAIN_MODEL)
    # --ca-bundle: the step that wrote /etc/pack/ca-bundle.pem is where such a base used to fail.
    result = _build(truss, appuser_base, resources, "appuser-plain", ca_bundle=HOST_CA_BUNDLE)
    running = start(result, result.plan, resources, timeout=120)
    try:
        yield result, running
    finally:
        running.container.remove()


def test_non_root_base_builds_and_serves_as_its_user(plain: tuple[BuildResult, Any]) -> None:
    result, running = plain
    assert result.plan.base.user == "appuser" and result.plan.runtime_user == "appuser"
    answer = runner.predict(running.url, {}, timeout=60)
    assert answer["user"] == "appuser" and answer["uid"] == 4321
    # The build command ran as root and saw environment_variables as ENV.
    assert answer["build"] == {"uid": 0, **ENV}
    assert answer["env"] == ENV


def test_environment_variables_are_in_the_image_config(plain: tuple[BuildResult, Any], docker_client: Any) -> None:
    result, _ = plain
    config = docker_client.api.inspect_image(result.image.id)["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert {k: env.get(k) for k in ENV} == ENV
    assert config["User"] == "appuser"


@pytest.fixture(scope="module")
def baked(appuser_base: str, tiny_repo: str, resources: Resources, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[BuildResult, Any]]:
    config = (f"model_name: {unique('appuser-bake')}\npython_version: py311\nrequirements:\n"
              "  - huggingface_hub==2.5.0\n"
              f"model_cache:\n  - repo_id: {tiny_repo}\n    revision: main\n    use_volume: false\n"
              "    allow_patterns: [a.txt]\n")
    truss = _truss(tmp_path_factory.mktemp("bake") / "t", config, BAKE_MODEL)
    result = _build(truss, appuser_base, resources, "appuser-bake")
    running = start(result, result.plan, resources, timeout=120)
    try:
        yield result, running
    finally:
        running.container.remove()


def test_baked_hf_cache_is_readable_and_writable_for_the_user(baked: tuple[BuildResult, Any], docker_client: Any
                                                              ) -> None:
    result, running = baked
    answer = runner.predict(running.url, {}, timeout=60)
    assert answer["user"] == "appuser"
    assert answer["baked"] == TINY_FILES["a.txt"] and answer["fetched"] == TINY_FILES["b.txt"]
    assert answer["hub_cache"] == result.plan.hf_cache_for_user == "/root/.cache/huggingface/hub"
    # The baked bytes stay root's (no copy of them in a chown layer); the new download is appuser's.
    owners = exec_in(docker_client, running.container.name,
                     ["sh", "-c", "stat -L -c '%U %n' /root/.cache/huggingface/hub/models--pack-e2e--tiny-files/"
                                  "snapshots/*/*.txt"]).split("\n")
    assert sorted(line.split()[0] + " " + line.rsplit("/", 1)[1] for line in owners if line) == [
        "appuser b.txt", "root a.txt"]


@pytest.fixture(scope="module")
def volume(appuser_base: str, tiny_repo: str, resources: Resources, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[BuildResult, Any]]:
    config = (f"model_name: {unique('appuser-volume')}\npython_version: py311\n"
              f"model_cache:\n  - repo_id: {tiny_repo}\n    revision: main\n    use_volume: true\n"
              "    volume_folder: tiny\n")
    truss = _truss(tmp_path_factory.mktemp("volume") / "t", config, VOLUME_MODEL)
    result = _build(truss, appuser_base, resources, "appuser-volume")
    running = start(result, result.plan, resources, timeout=120)
    try:
        yield result, running
    finally:
        running.container.remove()


def test_volume_mode_prefetch_writes_as_the_user(volume: tuple[BuildResult, Any], docker_client: Any) -> None:
    _, running = volume
    answer = runner.predict(running.url, {}, timeout=60)
    assert answer == {"uid": 4321, "user": "appuser", "home": "/home/appuser",
                      "a": TINY_FILES["a.txt"], "b": TINY_FILES["b.txt"]}
    # The node cache volume (created on first use from the image's directory) is appuser's too.
    owner = exec_in(docker_client, running.container.name, ["stat", "-c", "%U", "/var/lib/pack/cache"])
    assert owner.strip() == "appuser"
