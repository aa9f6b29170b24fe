"""Import rules of the architecture, checked by reading every module's imports (AST)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "packager"


def _imports(path: Path) -> set[str]:
    """Absolute names of the packager modules a file imports (relative imports resolved)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        module = module.rsplit(".", 1)[0] + ".__init__"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found |= {f"{name}.{a.name}" for a in node.names}
    return {n for n in found if n == "packager" or n.startswith("packager.")}


def _files(sub: str) -> list[Path]:
    return sorted((PACKAGE / sub).rglob("*.py"))


def _violations(sub: str, allowed: tuple[str, ...]) -> list[str]:
    bad = []
    for path in _files(sub):
        for name in _imports(path):
            if name == "packager" or any(name == a or name.startswith(a + ".") for a in allowed):
                continue
            bad.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    return bad


# Which parts of packager each part may import: the data flow of the README, earlier stages
# only, and nothing but the API for the CLI. A new package must be declared here.
LEAVES = {"errors", "constants", "__version__", "templating", "cache_dirs", "interrupts", "__init__"}
ALLOWED: dict[str, set[str]] = {
    # The image's own code: copied into images where pack is not installed.
    "runtime": {"constants", "__version__"},
    # runtime imports nothing past constants, so the config may share its pure rules (which
    # secret values count as unset) instead of restating them.
    "config": {"errors", "constants", "__version__", "runtime"},
    "plan": {"config", "runtime"} | LEAVES,
    "render": {"config", "plan", "runtime"} | LEAVES,
    "engine": {"errors", "constants"},
    "registry": {"engine", "errors", "constants"},
    "builder": {"config", "plan", "render", "engine"} | LEAVES,
    "runner": {"builder", "engine", "plan", "render", "runtime"} | LEAVES,
    "chains_codegen": {"config", "plan", "render", "runtime"} | LEAVES,
    "devloop": {"config", "plan", "render", "engine", "builder", "runner", "chains_codegen"} | LEAVES,
    # After push: a planned truss -> Kubernetes/Knative/KServe manifests (no engine, no registry).
    "deploy": {"config", "plan", "render", "runtime"} | LEAVES,
    "api": {"config", "plan", "render", "engine", "registry", "builder", "runner", "chains_codegen",
            "runtime", "devloop", "deploy"} | LEAVES,
    # The command line: parsing and printing over the library API.
    "cli": {"api", "errors", "__version__"},
}


def _area(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_part_imports_only_what_its_stage_may() -> None:
    bad = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        area = rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 else rel.stem
        if area in LEAVES:
            allowed = {"errors", "constants", "__version__", "__init__"}
        else:
            assert area in ALLOWED, f"packager/{rel.parts[0]} is not declared in ALLOWED"
            allowed = ALLOWED[area]
        for name in _imports(path) - {"packager"}:  # `from packager import x` is judged by x
            target = _area(name)
            if target != area and target not in allowed:
                bad.append(f"packager/{rel} ({area}) imports {name}")
    assert bad == []


def test_runtime_is_a_leaf() -> None:
    # The runtime is copied into images where pack is not installed.
    assert _violations("runtime", ("packager.runtime", "packager.constants", "packager.__version__")) == []


def test_runtime_uses_no_build_time_libraries() -> None:
    heavy = {"pydantic", "jinja2", "docker", "yaml", "rich", "click", "huggingface_hub"}
    bad = []
    for path in _files("runtime"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            bad += [f"{path.name}: {n}" for n in names if n.split(".")[0] in heavy]
    assert bad == []


# Inside the image, grouped by what runs: each group uses only the groups after it; the modules
# directly in runtime/ are shared by them (and by the build), except entrypoint.py, which starts
# the prefetch and then serving, handing serving the reload control of dev images. dev (only in
# images built for `pack watch`) drives serving; serving never imports dev, so an image without
# it serves unchanged.
RUNTIME_GROUPS: dict[str, set[str]] = {
    "dev": {"serving"},
    "serving": {"prefetch"},
    "prefetch": {"transfer"},
    "transfer": set(),
    "shared": set(),
    "entrypoint": {"prefetch", "serving", "dev"},
}


def test_runtime_groups_depend_one_way() -> None:
    bad = []
    for path in _files("runtime"):
        rel = path.relative_to(PACKAGE / "runtime").parts
        group = rel[0] if len(rel) > 1 else "entrypoint" if rel[0] == "entrypoint.py" else "shared"
        assert group in RUNTIME_GROUPS, f"packager/runtime/{rel[0]} is not declared in RUNTIME_GROUPS"
        for name in _imports(path):
            parts = name.split(".")
            target = parts[2] if len(parts) > 2 and parts[1] == "runtime" else None
            if target in RUNTIME_GROUPS and target != group and target not in RUNTIME_GROUPS[group]:
                bad.append(f"packager/runtime/{'/'.join(rel)} ({group}) imports {name}")
    assert bad == []


def test_cli_uses_only_the_api() -> None:
    bad = [f"{p.relative_to(PACKAGE)} imports {n}" for p in _files("cli") for n in _imports(p)
           if not n.startswith(("packager.cli", "packager.api", "packager.errors", "packager.__version__"))
           and n != "packager"]
    assert bad == []


def test_only_cli_output_prints() -> None:
    bad = []
    for path in PACKAGE.rglob("*.py"):
        if path.parts[-2:] == ("cli", "output.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                bad.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert bad == []
