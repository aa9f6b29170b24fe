"""`pack chains watch`: one dev container per chainlet, and each edit of the chain's code applied to
the chainlets it changes, only to those.

An edit regenerates the chain (in a fresh process: the chain file is imported, and a module the
process imported once would stay as it was) into a scratch directory, which is then compared with
the chainlets' trusses file by file. The chain file itself is copied into every chainlet, so it
is compared by what each chainlet runs of it: the module's code outside the chainlet classes,
plus the chainlet's own class. Editing one chainlet's class reloads that chainlet alone; editing
a helper at the top of the file reloads all of them. A chain whose chainlets changed (one added,
removed, renamed or rewired) restarts as a whole.
"""

from __future__ import annotations

import ast
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from packager.chains_codegen import CHAIN_MANIFEST, ChainletTruss, GeneratedChain, read_chain
from packager.errors import PackError

from .session import Building, NotApplied, WatchEvent, WatchSession

RENDER_TIMEOUT = 300.0


@dataclass(frozen=True)
class ChainletEvent:
    chainlet: str
    event: WatchEvent


ChainReporter = Callable[[ChainletEvent | WatchEvent], None]


def render_fresh(source: Path, out: Path, *, entrypoint: str | None, name: str | None) -> GeneratedChain:
    """`pack chains render` in a new interpreter, into `out`; a chain that no longer loads is a
    PackError carrying what the render said."""
    argv = [sys.executable, "-m", "packager.cli.main", "chains", "render", str(source), "--out", str(out)]
    argv += ["--entrypoint", entrypoint] if entrypoint else []
    argv += ["--name", name] if name else []
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=RENDER_TIMEOUT,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    except subprocess.TimeoutExpired:
        raise PackError(f"rendering the chain {source} took longer than {RENDER_TIMEOUT:.0f} s",
                        hint="does the chain file do slow work at import time?") from None
    if done.returncode != 0:
        message = (done.stderr.strip() or done.stdout.strip()).removeprefix("error: ")
        raise PackError(f"{source}: {message}", hint="fix the chain file and save it again")
    roots = [p.parent for p in out.glob(f"*/{CHAIN_MANIFEST}")]
    if len(roots) != 1:
        raise PackError(f"rendering {source} wrote {len(roots)} chains into {out}", hint="report this bug")
    return read_chain(roots[0])


def chainlet_view(text: str, own: str, chainlets: frozenset[str]) -> str | None:
    """What chainlet `own` runs of the chain file: every top-level statement but the other
    chainlets' classes, compared as syntax (moving code up or down a line is no change). None
    when the file does not parse (every chainlet gets it, and reports the error)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    kept = [node for node in tree.body
            if not (isinstance(node, ast.ClassDef) and node.name in chainlets and node.name != own)]
    return ast.dump(ast.Module(body=kept, type_ignores=[]))


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()}


def sync_chainlet(fresh: Path, current: Path, *, own: str, chainlets: frozenset[str], chain_file: Path) -> list[Path]:
    """Bring the chainlet's truss at `current` in line with its fresh render at `fresh`; the paths
    under `current` that changed (written or deleted). `chain_file` is where the chain file sits
    in the truss (relative), compared by chainlet_view."""
    changed = []
    new, old = _files(fresh), _files(current)
    for rel in sorted(new):
        src, dst = fresh / rel, current / rel
        if rel in old and filecmp.cmp(src, dst, shallow=False):
            continue
        if rel == chain_file and rel in old:
            before = chainlet_view(dst.read_text(encoding="utf-8"), own, chainlets)
            after = chainlet_view(src.read_text(encoding="utf-8"), own, chainlets)
            if before is not None and before == after:
                continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.pack-new")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        changed.append(dst)
    for rel in sorted(old - new):
        (current / rel).unlink()
        changed.append(current / rel)
    return changed


def _shape(chain: GeneratedChain) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(c.name, c.display_name, c.model_name, c.dependencies) for c in chain.chainlets]


@dataclass
class ChainWatch:
    source: Path
    entrypoint: str | None
    name: str | None
    workspace: Path  # where the chainlets' trusses live while watched (their paths stay)
    make_session: Callable[[GeneratedChain, ChainletTruss], WatchSession]
    report: ChainReporter
    chain: GeneratedChain | None = None
    sessions: dict[str, WatchSession] = field(default_factory=dict)

    def start(self) -> GeneratedChain:
        self.report(Building(None))
        chain = render_fresh(self.source, self.workspace, entrypoint=self.entrypoint, name=self.name)
        self._start_all(chain)
        return chain

    def _start_all(self, chain: GeneratedChain) -> None:
        self.chain = chain
        for chainlet in chain.chainlets:  # dependencies first: each is up before its users start
            session = self.make_session(chain, chainlet)
            self.sessions[chainlet.name] = session
            session.start()

    def close(self) -> None:
        sessions, self.sessions = self.sessions, {}
        for session in reversed(list(sessions.values())):
            session.close()

    def apply(self, _edited: Iterable[Path]) -> list[str]:
        """Apply an edit of the chain's code; the chainlets it reached."""
        assert self.chain is not None, "start() first"
        with tempfile.TemporaryDirectory(prefix="pack-chain-watch-") as scratch:
            try:
                fresh = render_fresh(self.source, Path(scratch), entrypoint=self.entrypoint, name=self.name)
            except PackError as exc:
                self.report(NotApplied(exc))
                return []
            if _shape(fresh) != _shape(self.chain):
                self.report(Building(f"{self.source.name}: the chain's chainlets changed: restarting the chain"))
                self.close()
                shutil.rmtree(self.chain.root)
                target = self.workspace / fresh.root.name
                shutil.copytree(fresh.root, target)
                self._start_all(read_chain(target))
                return [c.name for c in self.chain.chainlets]
            names = frozenset(c.name for c in fresh.chainlets)
            chain_file = Path("packages") / self.source.name
            reached = []
            for current, new in zip(self.chain.chainlets, fresh.chainlets, strict=True):
                changed = sync_chainlet(new.path, current.path, own=current.name, chainlets=names,
                                        chain_file=chain_file)
                if changed:
                    reached.append(current.name)
                    self.sessions[current.name].apply(changed)
            return reached
