"""Commands load only what they use: `pack --help` and `pack fetch` start without pydantic,
rich, docker, huggingface_hub or jinja2 (each costs tens of milliseconds at every start; the
times themselves are printed by benchmarks/cli_start.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from packager.runtime.manifest import Digest, Entry, Manifest, Revision, Source
from tests.fixtures.range_server import RangeServer

HEAVY = ("pydantic", "rich", "docker", "huggingface_hub", "jinja2", "yaml", "boto3", "google.cloud")
PROBE = f"HEAVY = {HEAVY!r}\n" + """
import json, sys
from packager.cli.main import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "loaded": [m for m in HEAVY if m in sys.modules]}))
"""


def run_pack(*argv: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_loads_no_heavy_library() -> None:
    assert run_pack("--help") == {"code": 0, "loaded": []}


def test_fetch_loads_only_the_downloader(tmp_path: Path) -> None:
    data = b"weights" * 100
    with RangeServer({"/w/a.bin": data}) as server:
        entry = Entry(Source("https", server.base_url, server.url("/w/a.bin")), Revision("", "x"), len(data),
                      Digest("sha256", hashlib.sha256(data).hexdigest()), "/app/model_cache/m/a.bin", "m", None)
        manifest = tmp_path / "manifest.json"
        manifest.write_text(Manifest((entry,)).to_json())
        assert run_pack("fetch", str(manifest), "--dest", str(tmp_path / "dest")) == {"code": 0, "loaded": []}
    assert (tmp_path / "dest" / "m" / "a.bin").read_bytes() == data


def test_build_verbs_still_reach_the_heavy_libraries_when_used() -> None:
    result = run_pack("schema")
    assert result["code"] == 0 and "pydantic" in result["loaded"]
