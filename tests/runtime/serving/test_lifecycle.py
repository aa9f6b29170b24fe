"""Load failures exit non-zero with the reason logged; load retries; async load; SIGTERM drains."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from tests.runtime.harness import make_app

FAILING_LOAD = """
    class Model:
        def load(self):
            raise RuntimeError("weights are corrupt")

        def predict(self, x):
            return x
"""

FLAKY_LOAD = """
    from pathlib import Path


    class Model:
        def __init__(self, data_dir):
            self._marker = Path(data_dir) / "attempted"

        def load(self):
            if not self._marker.exists():
                self._marker.touch()
                raise RuntimeError("first attempt fails")

        def predict(self, x):
            return "loaded on retry"
"""

ASYNC_LOAD = """
    import asyncio


    class Model:
        async def load(self):
            await asyncio.sleep(0.2)
            self._event = asyncio.Event()  # bound to the loop that serves predict
            self._event.set()
            self.value = "awaited"

        async def predict(self, x):
            await asyncio.wait_for(self._event.wait(), 1)
            return self.value
"""

SLOW_PREDICT = """
    import time


    class Model:
        def predict(self, x):
            time.sleep(x["sleep"])
            return "finished"
"""


@pytest.mark.parametrize("code, config, reason", [
    (FAILING_LOAD, {}, "RuntimeError: weights are corrupt"),
    ("class Other:\n    pass\n", {}, "defines no class 'Model'"),
    ("from . import helpers\n", {}, "uses a relative import"),
    ("class Model:\n    def __init__(self):\n        raise ValueError('bad init')\n", {}, "ValueError: bad init"),
    ("class Model:\n    def predict(self, a, b, c):\n        pass\n", {},
     "ModelDefinitionError: `predict` takes 3 arguments"),
    ("class Model:\n    def load(self):\n        pass\n", {}, "has no `predict` method"),
    ("raise ImportError('torch is missing')\n", {}, "ImportError: torch is missing"),
    ("class Model:\n    def websocket(self, ws):\n        pass\n", {}, "`websocket` must be an `async def`"),
    (None, {"model_class_filename": "absent.py"}, "absent.py does not exist"),
])
def test_a_failed_load_exits_non_zero_with_the_reason(tmp_path, runtimes, code, config, reason):
    rt = runtimes(make_app(tmp_path, code, config=config))
    assert rt.wait_exit(30) == 1
    logs = rt.logs()
    assert "model load failed" in logs and reason in logs, logs
    assert rt.timeline()["failure"]


def test_load_is_retried_once_by_default(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, FLAKY_LOAD))
    rt.wait_ready()
    assert rt.predict({}) == (200, "loaded on retry")
    assert "load() failed (attempt 1 of 2)" in rt.logs()


def test_no_retry_when_num_load_retries_is_zero(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, FLAKY_LOAD), NUM_LOAD_RETRIES_TRUSS="0")
    assert rt.wait_exit(30) == 1
    assert "first attempt fails" in rt.logs()


def test_async_load_is_awaited_on_the_serving_loop(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, ASYNC_LOAD))
    rt.wait_ready()
    assert rt.predict({}) == (200, "awaited")


def test_sigterm_drains_requests_in_flight(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, SLOW_PREDICT))
    rt.wait_ready()
    result: dict = {}

    def call() -> None:
        result["response"] = rt.predict({"sleep": 1.0})

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    rt.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(OSError):  # no new connections once draining
        rt.request("GET", "/", timeout=2)
    assert rt.wait_exit(20) == 0
    thread.join(10)
    assert result["response"] == (200, "finished")
    assert time.monotonic() - started >= 0.4
    assert "draining 1 request(s)" in rt.logs()


def test_sigterm_when_idle_exits_at_once(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, SLOW_PREDICT))
    rt.wait_ready()
    started = time.monotonic()
    assert rt.stop() == 0
    assert time.monotonic() - started < 3
