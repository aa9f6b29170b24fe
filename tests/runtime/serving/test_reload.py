"""Reload in place (`pack watch`): the reload control on loopback with its token, patches applied
atomically inside their roots, the new code imported fresh and loaded beside the old instance,
requests in flight finishing on the old one, failures keeping it serving with file:line, and no
control at all (nothing imported, nothing listening) without the variables or the package."""

from __future__ import annotations

import importlib.util
import json
import marshal
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.range_server import RangeServer
from tests.runtime.harness import DevControl, listening_sockets, make_app, runtime_copy
from tests.runtime.prefetch.test_prefetch import COLLECTING_MODEL, MiB, blob, manifest_for
from tests.runtime.serving.test_docker_server import docker_app

NO_RETRY = {"NUM_LOAD_RETRIES_TRUSS": "0"}  # a failing load answers at once instead of after 1 s


def versioned(version: int, load_seconds: float = 0.0) -> str:
    return f"""
        import time

        VERSION = {version}


        class Model:
            def load(self):
                time.sleep({load_seconds})

            def predict(self, x):
                return VERSION
    """


def line_of(code: str, marker: str) -> int:
    """The 1-based line of `marker` in `code` as make_app and DevControl.patch write it."""
    lines = textwrap.dedent(code).split("\n")
    return next(i for i, line in enumerate(lines, 1) if marker in line)


def wait_for(condition, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what} never held within {timeout} s")


@pytest.fixture
def dev(tmp_path, runtimes):
    """start(code, **make_app kwargs) -> (runtime, control, app), ready."""

    def start(code: str | None, env: dict[str, str] | None = None, ready: bool = True, **app_kw):
        control = DevControl()
        app = make_app(tmp_path, code, **app_kw)
        rt = runtimes(app, **control.env(), **(env or {}))
        if ready:
            rt.wait_ready()
        else:
            rt.wait_listening()
        return rt, control, app

    return start


# --- the dev loop ------------------------------------------------------------------------------
def test_a_client_looping_across_five_reloads_sees_no_failure_and_every_new_version(dev):
    rt, control, _ = dev(versioned(0))
    answers: list[int] = []
    failures: list[object] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                status, body = rt.predict({}, timeout=30)
                ready = rt.request("GET", "/v1/models/model", timeout=30)[0]
            except OSError as exc:
                failures.append(repr(exc))
                continue
            if status != 200 or ready != 200:
                failures.append((status, body, ready))
            else:
                answers.append(body)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        for version in range(1, 6):
            status, doc = control.patch({"model/model.py": versioned(version, load_seconds=0.3)})
            assert status == 200 and doc["ok"] is True, doc
            assert doc["generation"] == version + 1
            assert set(doc["seconds"]) == {"apply", "import", "init", "load", "total"}
            assert doc["seconds"]["load"] >= 0.3  # the new load() ran before the answer
            assert rt.predict({}) == (200, version)
            wait_for(lambda v=version: answers and answers[-1] == v, what=f"the client seeing {version}")
    finally:
        stop.set()
        thread.join(30)
    assert failures == []
    assert answers == sorted(answers) and set(answers) == set(range(6))
    assert control.status() == {"generation": 6, "state": "serving", "last_error": None}


IN_FLIGHT = """
    import pathlib
    import time

    VERSION = {version}


    class Model:
        def __init__(self, data_dir):
            self._dir = pathlib.Path(data_dir)

        def predict(self, x):
            if x.get("block"):
                (self._dir / "entered").touch()
                while not (self._dir / "gate").exists():
                    time.sleep(0.01)
            return {{"predict": VERSION}}

        def postprocess(self, result):
            # After the swap for a blocked request: needs the old pipeline still open.
            result["postprocess"] = VERSION
            return result
"""


def test_a_request_in_flight_during_a_swap_finishes_on_the_old_instance(dev):
    rt, control, app = dev(IN_FLIGHT.format(version=1))
    result: dict = {}
    blocked = threading.Thread(target=lambda: result.update(response=rt.predict({"block": True})))
    blocked.start()
    try:
        wait_for(lambda: (app.root / "data" / "entered").exists(), what="the request entering predict")
        status, doc = control.patch({"model/model.py": IN_FLIGHT.format(version=2)})
        assert (status, doc["ok"], doc["generation"]) == (200, True, 2), doc
        # The new instance answers while the old one still holds its (only) permit.
        assert rt.predict({}) == (200, {"predict": 2, "postprocess": 2})
        assert "generation 1 closed" not in rt.logs()
    finally:
        (app.root / "data" / "gate").touch()
        blocked.join(30)
    assert result["response"] == (200, {"predict": 1, "postprocess": 1})
    wait_for(lambda: "generation 1 closed" in rt.logs(), what="the old pipeline closing")


SYNTAX_ERROR = """
    VERSION = 9


    def broken(:
        return VERSION
"""


def test_a_syntax_error_keeps_the_old_model_and_names_file_and_line(dev):
    rt, control, app = dev(versioned(0))
    status, doc = control.patch({"model/model.py": SYNTAX_ERROR})
    assert status == 200 and doc["ok"] is False and doc["generation"] == 1, doc
    error = doc["error"]
    assert error["type"] == "SyntaxError"
    assert error["file"] == str(app.root / "model" / "model.py")
    assert error["line"] == line_of(SYNTAX_ERROR, "def broken(")
    assert "SyntaxError" in error["traceback"]
    assert rt.predict({}) == (200, 0)
    assert rt.request("GET", "/v1/models/model")[0] == 200
    state = control.status()
    assert state["state"] == "failed" and state["generation"] == 1
    assert state["last_error"]["line"] == error["line"]

    status, doc = control.patch({"model/model.py": versioned(1)})  # the fix recovers
    assert (status, doc["ok"], doc["generation"]) == (200, True, 2), doc
    assert rt.predict({}) == (200, 1)
    assert control.status() == {"generation": 2, "state": "serving", "last_error": None}


FAILING_LOAD = """
    import helpers

    VERSION = 5


    class Model:
        def load(self):
            helpers.prepare()

        def predict(self, x):
            return VERSION
"""

FAILING_HELPER = """
    def prepare():
        weights = {}
        return weights["missing"]
"""

RAISING_LOAD = """
    class Model:
        def load(self):
            raise RuntimeError("weights are corrupt")

        def predict(self, x):
            return 7
"""


@pytest.mark.parametrize("files, where, marker, error_type", [
    ({"model/model.py": RAISING_LOAD}, "model/model.py", "raise RuntimeError", "RuntimeError"),
    ({"model/model.py": FAILING_LOAD, "model/helpers.py": FAILING_HELPER}, "model/helpers.py",
     'weights["missing"]', "KeyError"),
], ids=["in-model", "in-helper"])
def test_a_failing_load_keeps_the_old_model_and_the_next_good_patch_recovers(dev, files, where, marker,
                                                                             error_type):
    rt, control, app = dev(versioned(0), env=NO_RETRY)
    status, doc = control.patch(files)
    assert status == 200 and doc["ok"] is False and doc["generation"] == 1, doc
    assert doc["error"]["type"] == error_type
    assert doc["error"]["file"] == str(app.root / where)  # the innermost frame of the truss's code
    assert doc["error"]["line"] == line_of(files[where], marker)
    assert rt.predict({}) == (200, 0)
    assert rt.request("GET", "/v1/models/model")[0] == 200
    assert "reload failed (generation 1 keeps serving)" in rt.logs()

    status, doc = control.patch({"model/model.py": versioned(3)})
    assert (status, doc["ok"], doc["generation"]) == (200, True, 2), doc
    assert rt.predict({}) == (200, 3)


USES_HELPERS = """
    import helpers
    import shared


    class Model:
        def predict(self, x):
            return [helpers.VALUE, shared.VALUE]
"""

USES_NEW_MODULE = """
    import fresh


    class Model:
        def predict(self, x):
            return fresh.VALUE
"""


def test_edited_helpers_beside_model_py_and_in_packages_are_imported_again(dev, tmp_path):
    packages = tmp_path / "packages" / "shared"
    packages.mkdir(parents=True)
    (packages / "__init__.py").write_text("VALUE = 1\n")
    rt, control, app = dev(USES_HELPERS, files={"model/helpers.py": "VALUE = 1\n"})
    assert rt.predict({}) == (200, [1, 1])

    assert control.patch({"model/helpers.py": "VALUE = 2\n"})[1]["ok"] is True
    assert rt.predict({}) == (200, [2, 1])
    assert control.patch(packages={"shared/__init__.py": "VALUE = 3\n"})[1]["ok"] is True
    assert rt.predict({}) == (200, [2, 3])

    # A module created by the patch is found; a deleted one is gone from disk.
    status, doc = control.patch({"model/model.py": USES_NEW_MODULE, "model/fresh.py": "VALUE = 4\n"},
                                deleted=[{"root": "app", "path": "model/helpers.py"}])
    assert (status, doc["ok"]) == (200, True), doc
    assert rt.predict({}) == (200, 4)
    assert not (app.root / "model" / "helpers.py").exists()


def test_an_edit_of_the_same_size_in_the_same_second_is_not_served_from_stale_bytecode(dev):
    """A .pyc is trusted while the source's size and whole-second mtime match it: forge the one
    the previous source would have left, for a same-length edit landing in this second."""
    rt, control, app = dev(USES_NEW_MODULE, files={"model/fresh.py": "VALUE = 1\n"})
    assert rt.predict({}) == (200, 1)
    source = app.root / "model" / "fresh.py"
    wait_for(lambda: time.time() % 1 < 0.3, what="the start of a second")
    now = int(time.time())
    header = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little") + now.to_bytes(4, "little")
    code = marshal.dumps(compile("VALUE = 1\n", str(source), "exec"))
    cached = Path(importlib.util.cache_from_source(str(source)))
    cached.parent.mkdir(exist_ok=True)
    cached.write_bytes(header + len("VALUE = 2\n").to_bytes(4, "little") + code)
    status, doc = control.patch({"model/fresh.py": "VALUE = 2\n"})
    assert (status, doc["ok"]) == (200, True), doc
    assert int(source.stat().st_mtime) == now, "the patch landed in another second: no stale case made"
    assert rt.predict({}) == (200, 2)


def test_a_changed_config_is_read_again(dev):
    """predict_concurrency 1 -> 2 through .pack/config.json: two requests meet in predict."""
    code = """
        import threading

        MEET = threading.Barrier(2, timeout=20)


        class Model:
            def predict(self, x):
                MEET.wait()  # with one permit the second request never gets here
                return "met"
    """
    rt, control, app = dev(code)
    config = {**app.config, "runtime": {"predict_concurrency": 2, "streaming_read_timeout": 60}}
    status, doc = control.patch({".pack/config.json": json.dumps(config), "config.yaml": json.dumps(config)})
    assert (status, doc["ok"]) == (200, True), doc
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(rt.predict({}))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [(200, "met"), (200, "met")]


GATED_LOAD = """
    import pathlib
    import time


    class Model:
        def __init__(self, data_dir):
            self._dir = pathlib.Path(data_dir)

        def load(self):
            with (self._dir / "loads").open("a") as fh:
                fh.write("start\\n")
            while not (self._dir / "gate").exists():
                time.sleep(0.01)
            time.sleep(0.2)
            with (self._dir / "loads").open("a") as fh:
                fh.write("end\\n")

        def predict(self, x):
            return "ok"
"""


def test_patches_reload_one_at_a_time(dev):
    rt, control, app = dev(GATED_LOAD, files={"data/gate": ""})
    answers: list = []
    threads = [threading.Thread(target=lambda: answers.append(control.patch({"model/model.py": GATED_LOAD})))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(doc["generation"] for _, doc in answers) == [2, 3, 4]
    assert (app.root / "data" / "loads").read_text().split() == ["start", "end"] * 4


def test_the_reloaded_lazy_data_resolver_fetches_nothing(dev):
    with RangeServer() as server:
        manifest = manifest_for(server, {"llm/w.bin": blob(2 * MiB, 11)})
        rt, control, app = dev(COLLECTING_MODEL, manifest=manifest)
        assert rt.predict({}) == (200, "ok")
        requests = server.counters.requests
        assert requests > 0 and (app.model_cache / "llm" / "w.bin").stat().st_size == 2 * MiB
        # The new instance collects the weights again, through a new resolver.
        status, doc = control.patch({"model/model.py": COLLECTING_MODEL.replace('"ok"', '"reloaded"')})
        assert (status, doc["ok"]) == (200, True), doc
        assert rt.predict({}) == (200, "reloaded")
        assert server.counters.requests == requests


# --- the first load under pack watch -------------------------------------------------------------
def test_status_says_loading_until_the_first_load_ends(dev):
    rt, control, app = dev(GATED_LOAD, ready=False)
    wait_for(lambda: _answers(control), what="the control listening")
    assert control.status() == {"generation": 0, "state": "loading", "last_error": None}
    (app.root / "data" / "gate").touch()
    rt.wait_ready()
    assert control.status() == {"generation": 1, "state": "serving", "last_error": None}


def test_a_failed_first_load_waits_for_a_fixing_patch(dev):
    rt, control, app = dev(RAISING_LOAD, env=NO_RETRY, ready=False)
    state = wait_for(lambda: _answers(control) and control.status()["state"] == "failed" and control.status(),
                     what="the first load failing")
    assert state["generation"] == 0 and state["last_error"]["type"] == "RuntimeError"
    assert state["last_error"]["line"] == line_of(RAISING_LOAD, "raise RuntimeError")
    assert rt.proc.poll() is None  # still running: the control is what fixes it
    assert rt.request("GET", "/v1/models/model")[0] == 503
    status, doc = control.patch({"model/model.py": versioned(1)})
    assert (status, doc["ok"], doc["generation"]) == (200, True, 1), doc
    assert rt.predict({}) == (200, 1)


def _answers(control: DevControl) -> bool:
    try:
        control.request("GET", "/v1/dev/status", timeout=5)
        return True
    except OSError:
        return False


# --- what a patch may touch ----------------------------------------------------------------------
def test_a_patch_reaching_outside_its_root_is_refused_and_nothing_is_written(dev, tmp_path):
    rt, control, app = dev(versioned(0))
    outside = tmp_path / "outside"
    outside.mkdir()
    (app.root / "link").symlink_to(outside)
    (app.root / "model_cache" / "llm").mkdir(parents=True)
    good = {"root": "app", "path": "model/written.py", "content_b64": "VkFMVUUgPSAxCg==", "mode": 420}
    bad_entries = [
        {"root": "app", "path": "../escape.py"},
        {"root": "app", "path": "model/../../escape.py"},
        {"root": "app", "path": str(tmp_path / "escape.py")},
        {"root": "app", "path": "model_cache/llm/w.bin"},
        {"root": "app", "path": "model_cache"},
        {"root": "app", "path": "link/escape.py"},
        {"root": "packages", "path": "../app/model/model.py"},
        {"root": "elsewhere", "path": "x.py"},
        {"root": "app", "path": "model//x.py"},
    ]
    for bad in bad_entries:
        entry = {"content_b64": "eA==", "mode": 420, **bad}
        for body in ({"files": [good, entry]}, {"files": [good], "deleted": [bad]}):
            status, doc = control.request("POST", "/v1/dev/patch", body)
            assert status == 400 and doc["detail"], (bad, doc)
    for body in (b"not json", b"[]", {"files": [good], "extra": 1}, {"files": [{**good, "content_b64": "!"}]},
                 {"files": [{**good, "mode": "644"}]}, {"files": [good, good]}):
        status, doc = control.request("POST", "/v1/dev/patch", body)
        assert status == 400 and doc["detail"], (body, doc)
    assert not (app.root / "model" / "written.py").exists()
    assert not (tmp_path / "escape.py").exists() and not (outside / "escape.py").exists()
    assert not (app.root / "model_cache" / "llm" / "w.bin").exists()
    assert [p.name for p in (app.root / "model").iterdir() if p.name != "__pycache__"] == ["model.py"]
    assert control.status()["generation"] == 1
    assert rt.predict({}) == (200, 0)


def test_a_patch_that_cannot_be_written_is_not_applied_at_all(dev):
    rt, control, app = dev(versioned(0))
    # The first file could be written; the second cannot (its parent is a file): neither is.
    status, doc = control.patch({"model/model.py": versioned(1), "model/model.py/x.py": "x = 1\n"})
    assert status == 200 and doc["ok"] is False and doc["generation"] == 1, doc
    assert doc["error"]["type"] in ("FileExistsError", "NotADirectoryError"), doc
    assert doc["error"]["file"] == str(app.root / "model" / "model.py")
    assert "VERSION = 0" in (app.root / "model" / "model.py").read_text()
    assert sorted(p.name for p in (app.root / "model").iterdir()) == ["model.py"]
    assert rt.predict({}) == (200, 0)


def test_the_token_is_required(dev):
    rt, control, app = dev(versioned(0))
    body = {"files": [{"root": "app", "path": "model/model.py", "content_b64": "eA==", "mode": 420}]}
    for token in ("", "wrong", control.token + "x", control.token[:-1]):
        for method, path, payload in (("GET", "/v1/dev/status", None), ("POST", "/v1/dev/patch", body),
                                      ("GET", "/nowhere", None)):
            status, doc = control.request(method, path, payload, token=token)
            assert status == 401 and doc["detail"], (token, path, doc)
    status, doc = control.request("GET", "/v1/dev/status", token="", headers={"Authorization": control.token})
    assert status == 401  # the scheme is part of it
    assert (app.root / "model" / "model.py").read_text().count("VERSION = 0") == 1
    assert control.request("GET", "/nowhere")[0] == 404
    assert control.request("GET", "/v1/dev/patch")[0] == 405
    assert rt.predict({}) == (200, 0)


# --- when the control exists -------------------------------------------------------------------
def test_the_control_listens_on_loopback_only(dev):
    rt, control, _ = dev(versioned(0), env={"PYTHONPROFILEIMPORTTIME": "1"})
    sockets = listening_sockets(rt.proc.pid)
    assert {port for port, _ in sockets} == {rt.port, control.port}
    assert {address for port, address in sockets if port == control.port} == {"127.0.0.1"}
    assert "packager.runtime.dev" in rt.logs()  # the import-time lines: the other test's counterpart


def test_without_the_variables_nothing_is_imported_and_nothing_else_listens(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, versioned(0)), PYTHONPROFILEIMPORTTIME="1")
    rt.wait_ready()
    assert rt.listening_ports() == {rt.port}
    logs = rt.logs()
    assert "import time:" in logs and "packager.runtime.serving.server" in logs
    assert "packager.runtime.dev" not in logs


def test_an_image_without_the_dev_package_warns_once_and_serves(tmp_path, runtimes):
    control = DevControl()
    code_root = runtime_copy(tmp_path / "image", dev=False)
    rt = runtimes(make_app(tmp_path, versioned(0)), code_root=code_root, **control.env())
    rt.wait_ready()
    assert rt.predict({}) == (200, 0)
    assert rt.listening_ports() == {rt.port}
    assert rt.logs().count("this image has no reload control") == 1


def test_a_copied_runtime_with_the_dev_package_has_the_control(tmp_path, runtimes):
    """The counterpart of the test above: the copy itself is not what removes the control."""
    control = DevControl()
    code_root = runtime_copy(tmp_path / "image", dev=True)
    rt = runtimes(make_app(tmp_path, versioned(0)), code_root=code_root, **control.env())
    rt.wait_ready()
    assert rt.listening_ports() == {rt.port, control.port}
    assert control.status()["generation"] == 1


def test_docker_server_mode_has_no_control(tmp_path, runtimes):
    control = DevControl()
    with RangeServer() as server:
        app, _ = docker_app(tmp_path, server)
        rt = runtimes(app, **control.env())
        rt.wait_ready(30)
        assert rt.listening_ports() == {rt.port}


def test_an_unusable_port_serves_without_control(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, versioned(0)), PACK_DEV_CONTROL_PORT="not-a-port",
                  PACK_DEV_CONTROL_TOKEN="t")
    rt.wait_ready()
    assert rt.listening_ports() == {rt.port}
    assert "must both be set" in rt.logs()
