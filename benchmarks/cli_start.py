"""How long `pack` takes to start: wall seconds of `pack --help`, `pack check` of the echo sample
and `pack fetch` of one small file, best of N, with the interpreter's own start for reference.

    python benchmarks/cli_start.py [--repeat 10]

No assertions: figures only (tests/cli/test_cli_start.py checks what each command imports).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from packager.runtime.manifest import Digest, Entry, Manifest, Revision, Source  # noqa: E402
from tests.fixtures.range_server import RangeServer  # noqa: E402


def best(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    pack = [sys.executable, "-m", "packager.cli.main"]
    rows = [("python -c pass", best([sys.executable, "-c", "pass"], args.repeat)),
            ("pack --help", best([*pack, "--help"], args.repeat)),
            ("pack check sample_trusses/echo", best([*pack, "check", "sample_trusses/echo"], args.repeat))]
    with tempfile.TemporaryDirectory() as tmp, RangeServer({"/a.bin": b"x" * 4096}) as server:
        entry = Entry(Source("https", server.base_url, server.url("/a.bin")), Revision("", "x"), 4096,
                      Digest("sha256", hashlib.sha256(b"x" * 4096).hexdigest()), "/app/model_cache/m/a.bin", "m", None)
        manifest = Path(tmp) / "manifest.json"
        manifest.write_text(Manifest((entry,)).to_json())
        rows.append(("pack fetch (one 4 KiB file)",
                     best([*pack, "fetch", str(manifest), "--dest", str(Path(tmp) / "dest")], args.repeat)))
    print(f"{'command':<34} | best of {args.repeat}, s")
    for name, seconds in rows:
        print(f"{name:<34} | {seconds:.3f}")


if __name__ == "__main__":
    main()
