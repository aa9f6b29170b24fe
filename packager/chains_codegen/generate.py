"""Generating the truss of each chainlet (chains-compat §8) from a loaded chain."""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import shutil
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic
import yaml

import chains
from chains import truss_config as chains_truss_config
from chains.errors import ChainsDeploymentError
from chains.framework import ChainletBase, ChainletDescriptor, registry
from chains.loading import ALIAS_DIR, RESERVED_MODULE_NAMES, TRUSS_SHIM_DIR, load_chain
from chains.public_types import BASETEN_API_SECRET_NAME, BasetenImage, CustomImage, WebsocketOptions
from packager import constants
from packager.config import load_config
from packager.templating import render

from .closure import code_closure

CHAINS_PACKAGE_DIR = Path(chains.__file__).resolve().parent
# chains' async HTTP client: its `import aiohttp` makes the build add aiohttp (one of Truss's
# server packages, truss_server_packages), so only chainlets that call other services have it.
ASYNC_CLIENT_MODULE = "async_http.py"
PACKAGES_DIR = "packages"
CHAIN_MANIFEST = "chain.json"
MODEL_CLASS_NAME = "TrussChainletModel"
_ATOMS = {int: "int", float: "float", complex: "complex", bool: "bool", str: "str", bytes: "bytes",
          type(None): "None"}


@dataclass(frozen=True)
class ArgView:
    name: str
    type: str
    default_server: str | None  # expression for the Input model field, None = required
    default_stub: str | None  # expression for the stub parameter, None = required


@dataclass(frozen=True)
class ChainletView:
    name: str
    display_name: str
    cls: str  # expression naming the user's class
    args: tuple[ArgView, ...]
    output_type: str  # the value type, or the item type of a stream
    is_async: bool
    is_streaming: bool
    has_context: bool
    health_check: bool | None
    arg_name: str = ""
    endpoint: str = "run_remote"  # `predict` for a ModelBase model
    is_websocket: bool = False  # the endpoint takes a WebSocketProtocol: served as `websocket`


@dataclass(frozen=True)
class ChainletTruss:
    name: str
    display_name: str
    model_name: str
    path: Path
    dependencies: tuple[str, ...]
    included_files: tuple[str, ...]
    volume_mode: bool
    websocket: bool = False  # its endpoint is a websocket, served at /v1/websocket

    def endpoint_url(self, base: str) -> str:
        """Where a client calls this chainlet when it is served at `base` (http://host:port)."""
        if self.websocket:
            return "ws" + base.removeprefix("http") + constants.WEBSOCKET_PATH
        return base + constants.PREDICT_PATH


@dataclass(frozen=True)
class GeneratedChain:
    chain_name: str
    entrypoint: str
    source: Path
    root: Path
    chainlets: tuple[ChainletTruss, ...]  # dependencies before their users; entrypoint last
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def chainlet(self, name: str) -> ChainletTruss:
        return next(c for c in self.chainlets if c.name == name)


# --- type expressions ------------------------------------------------------------------------------
def type_expr(annotation: Any, imports: set[str]) -> str:
    if annotation is None or annotation is type(None):
        return "None"
    if annotation in _ATOMS:
        return _ATOMS[annotation]
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        module = annotation.__module__
        if module == "__main__" or "<locals>" in annotation.__qualname__:
            raise ChainsDeploymentError(
                f"pydantic model `{annotation.__qualname__}` is defined in {module} (or inside a "
                "function): define I/O types at the top level of a module of the chain")
        imports.add(module)
        return f"{module}.{annotation.__qualname__}"
    if isinstance(annotation, types.GenericAlias):
        origin = typing.get_origin(annotation)
        args = ["..." if a is Ellipsis else type_expr(a, imports) for a in typing.get_args(annotation)]
        return f"{origin.__name__}[{', '.join(args)}]"
    raise ChainsDeploymentError(f"cannot express the type {annotation!r} in generated code")


def literal(value: Any) -> str | None:
    """`repr(value)` when it is a Python literal that evaluates back to the same value."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not isinstance(value, (type(None), bool, int, float, str, bytes, list, dict, tuple)):
        return None
    text = repr(value)
    try:
        return text if ast.literal_eval(text) == value else None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def chainlet_view(descriptor: ChainletDescriptor, imports: set[str], arg_name: str = "") -> ChainletView:
    cls = descriptor.chainlet_cls
    imports.add(cls.__module__)
    cls_expr = f"{cls.__module__}.{cls.__qualname__}"
    endpoint = descriptor.endpoint
    if endpoint.is_websocket:  # no request or response body: the messages go through the socket
        return ChainletView(
            name=descriptor.name, display_name=descriptor.display_name, cls=cls_expr, args=(),
            output_type="None", is_async=True, is_streaming=False, has_context=descriptor.has_context,
            health_check=descriptor.health_check_is_async, arg_name=arg_name, endpoint=endpoint.name,
            is_websocket=True)
    args = []
    for arg in endpoint.input_args:
        type_text = type_expr(arg.annotation, imports)
        if not arg.has_default:
            args.append(ArgView(arg.name, type_text, None, None))
            continue
        text = literal(arg.default)
        if text is not None:
            args.append(ArgView(arg.name, type_text, text, text))
        else:
            server = f"glue.default_of({cls_expr}.{endpoint.name}, {arg.name!r})"
            args.append(ArgView(arg.name, type_text, server, "glue.OMITTED"))
    output = type_expr(endpoint.output_types[0], imports)
    return ChainletView(
        name=descriptor.name, display_name=descriptor.display_name, cls=cls_expr, args=tuple(args),
        output_type=output, is_async=endpoint.is_async, is_streaming=endpoint.is_streaming,
        has_context=descriptor.has_context, health_check=descriptor.health_check_is_async,
        arg_name=arg_name, endpoint=endpoint.name)


# --- config.yaml -----------------------------------------------------------------------------------
def model_name(chain_name: str, display_name: str) -> str:
    digest = hashlib.sha256(f"{chain_name}\0{display_name}".encode()).hexdigest()[:8]
    return f"{display_name}-{digest}"


def _dedupe(lines: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for line in lines:
        if line not in seen:
            seen.add(line)
            out.append(line)
    return out


def _mentions_pydantic(lines: list[str]) -> bool:
    return any(line.strip().lower().replace("_", "-").startswith("pydantic") for line in lines)


def chainlet_config(descriptor: ChainletDescriptor, chain_name: str, truss_dir: Path,
                    name: str | None = None) -> dict[str, Any]:
    remote = descriptor.chainlet_cls.remote_config
    image = remote.docker_image
    compute = remote.get_compute_spec()
    assets = remote.get_asset_spec()
    options = remote.options
    config: dict[str, Any] = {"model_name": name or model_name(chain_name, descriptor.display_name)}
    if isinstance(image.base_image, BasetenImage):
        config["python_version"] = image.base_image.value
    elif isinstance(image.base_image, CustomImage):
        base: dict[str, Any] = {"image": image.base_image.image}
        if image.base_image.python_executable_path:
            base["python_executable_path"] = image.base_image.python_executable_path
        if image.base_image.docker_auth is not None:
            base["docker_auth"] = image.base_image.docker_auth.model_dump(exclude_none=True)
        config["base_image"] = base
    runtime_pin = [f"pydantic=={pydantic.VERSION}"]
    requirements = list(image.pip_requirements)
    if image.requirements_file is not None:
        req = Path(image.requirements_file.abs_path)
        if req.name in ("pyproject.toml", "uv.lock"):
            shutil.copyfile(req, truss_dir / req.name)
            if req.name == "uv.lock":
                shutil.copyfile(req.parent / "pyproject.toml", truss_dir / "pyproject.toml")
            config["requirements_file"] = req.name
        else:
            lines = [ln for ln in req.read_text(encoding="utf-8").splitlines()
                     if ln.strip() and not ln.strip().startswith("#")]
            lines += requirements
            if not _mentions_pydantic(lines):
                lines += runtime_pin
            (truss_dir / "requirements.txt").write_text("\n".join(_dedupe(lines)) + "\n", encoding="utf-8")
            config["requirements_file"] = "requirements.txt"
    else:
        if not _mentions_pydantic(requirements):
            requirements += runtime_pin
        config["requirements"] = _dedupe(requirements)
    if image.apt_requirements:
        config["system_packages"] = _dedupe(list(image.apt_requirements))
    resources: dict[str, Any] = {"cpu": str(compute.cpu_count), "memory": compute.memory}
    if compute.accelerator_text():
        resources["accelerator"] = compute.accelerator_text()
    if compute.instance_type:
        resources["instance_type"] = compute.instance_type
    config["resources"] = resources
    runtime: dict[str, Any] = {"predict_concurrency": compute.predict_concurrency,
                               "streaming_read_timeout": options.streaming_read_timeout,
                               "enable_tracing_data": options.enable_b10_tracing,
                               "enable_debug_logs": options.enable_debug_logs}
    health = options.health_checks.model_dump(exclude_none=True)
    if health:
        runtime["health_checks"] = health
    if descriptor.endpoint.is_websocket:  # as truss_chains: the options' WebsocketOptions, or the default
        transport = options.transport if isinstance(options.transport, WebsocketOptions) else WebsocketOptions()
        runtime["transport"] = transport.model_dump(exclude_none=True)
    if image.truss_server_version_override:
        runtime["truss_server_version_override"] = image.truss_server_version_override
    config["runtime"] = runtime
    secrets: dict[str, None] = {name: None for name in assets.secrets}
    secrets[BASETEN_API_SECRET_NAME] = None
    config["secrets"] = secrets
    if options.env_variables:
        config["environment_variables"] = {str(k): str(v) for k, v in options.env_variables.items()}
    if assets.cached:
        config["model_cache"] = [chains_truss_config.dump(item) for item in assets.cached]
    if assets.external_data:
        config["external_data"] = [chains_truss_config.dump(item) for item in assets.external_data]
    if assets.weights:
        config["weights"] = [chains_truss_config.dump(item) for item in assets.weights]
    if remote.build_commands:
        config["build_commands"] = list(remote.build_commands)
    if image.external_package_dirs:
        config["external_package_dirs"] = [p.abs_path for p in image.external_package_dirs]
    metadata = dict(options.metadata or {})
    metadata["chains_metadata"] = {
        "chain_name": chain_name,
        "chainlet_name": descriptor.name,
        "chainlet_to_service": {
            dep.chainlet_cls.__name__: {
                "name": dep.chainlet_cls.__name__,
                "display_name": registry.descriptor(dep.chainlet_cls).display_name,
                "options": dep.options.model_dump(mode="json"),
            } for dep in descriptor.dependencies},
    }
    config["model_metadata"] = metadata
    config.update({"model_class_filename": "model.py", "model_class_name": MODEL_CLASS_NAME,
                   "bundled_packages_dir": PACKAGES_DIR, "data_dir": "data"})
    return config


# --- files -----------------------------------------------------------------------------------------
def _copy_package(src: Path, dest: Path, skip: tuple[str, ...] = ()) -> None:
    """The package's modules only: not its lint configuration (chains/ruff.toml) or the caches
    tools leave beside it (.ruff_cache, __pycache__), which would change the image at each run.
    `skip`: directories and files at the package's top level left out."""
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        dirs[:] = sorted(d for d in dirs if d.isidentifier() and d != "__pycache__"
                         and not (rel == Path(".") and d in skip))
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            if name.endswith(".py") and not (rel == Path(".") and name in skip):
                shutil.copyfile(Path(root) / name, dest / rel / name)


def calls_other_services(descriptor: ChainletDescriptor, workspace: Path, included: list[Path]) -> bool:
    """Whether the chainlet calls over HTTP: it has dependencies, or its code names StubBase
    (a client of a deployed model, `StubBase.from_url`)."""
    if descriptor.dependencies:
        return True
    for rel in included:
        tree = ast.parse((workspace / rel).read_text(encoding="utf-8"), filename=str(workspace / rel))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Name) and node.id == "StubBase"
                    or isinstance(node, ast.Attribute) and node.attr == "StubBase"
                    or isinstance(node, ast.alias) and node.name == "StubBase"):
                return True
    return False


def _module_file(cls: type) -> Path:
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    if not file:
        raise ChainsDeploymentError(f"chainlet `{cls.__name__}` is defined in `{cls.__module__}`, "
                                    "which has no source file")
    return Path(file).resolve()


def _write_chainlet(descriptor: ChainletDescriptor, chain_name: str, source: Path,
                    workspace: Path, root: Path, *, name: str | None = None,
                    generator: str = "`pack chains render`") -> ChainletTruss:
    """The truss of one chainlet at root/chainlet_<Class>; `name` replaces the derived
    model_name (a ModelBase model is named after its display name alone, as in Truss)."""
    truss_dir = root / f"chainlet_{descriptor.name}"
    if truss_dir.exists():
        shutil.rmtree(truss_dir)
    (truss_dir / "model").mkdir(parents=True)
    packages = truss_dir / PACKAGES_DIR
    packages.mkdir()

    module_file = _module_file(descriptor.chainlet_cls)
    try:
        module_file.relative_to(workspace)
    except ValueError:
        raise ChainsDeploymentError(
            f"chainlet `{descriptor.name}` is defined in {module_file}, outside the chain's "
            f"workspace {workspace}") from None
    included = code_closure(workspace, module_file)
    for rel in included:
        if rel.parts[0].removesuffix(".py") in RESERVED_MODULE_NAMES:
            raise ChainsDeploymentError(f"{workspace / rel}: the name `{rel.parts[0]}` is reserved "
                                        "in generated chainlets (pack's own packages); rename it")
        (packages / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(workspace / rel, packages / rel)
    calls = calls_other_services(descriptor, workspace, included)
    _copy_package(CHAINS_PACKAGE_DIR, packages / "chains",
                  skip=("_shims",) if calls else ("_shims", ASYNC_CLIENT_MODULE))
    _copy_package(ALIAS_DIR / "truss_chains", packages / "truss_chains")
    _copy_package(TRUSS_SHIM_DIR / "truss", packages / "truss")

    image = descriptor.chainlet_cls.remote_config.docker_image
    if image.data_dir is not None:
        shutil.copytree(image.data_dir.abs_path, truss_dir / "data")

    config = chainlet_config(descriptor, chain_name, truss_dir, name)
    body = yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=100)
    subject = (f"model `{descriptor.name}` (ModelBase)" if descriptor.endpoint.name != "run_remote"
               else f"chainlet `{descriptor.name}` of chain `{chain_name}`")
    (truss_dir / "config.yaml").write_text(
        render("chains/config.yaml.j2", source=source.name, generator=generator, subject=subject,
               body=body), encoding="utf-8")

    imports: set[str] = set()
    deps = [chainlet_view(registry.descriptor(d.chainlet_cls), imports, d.arg_name)
            for d in descriptor.dependencies]
    own = chainlet_view(descriptor, imports)
    code = render("chains/model.py.j2", source=source.name, generator=generator, subject=subject,
                  chainlet=own, deps=deps, imports=sorted(imports))
    compile(code, str(truss_dir / "model" / "model.py"), "exec")  # a template bug fails here
    (truss_dir / "model" / "model.py").write_text(code, encoding="utf-8")
    (truss_dir / "model" / "__init__.py").write_text("", encoding="utf-8")

    loaded = load_config(truss_dir)  # what `pack check` says, before anything is built
    return ChainletTruss(descriptor.name, descriptor.display_name, config["model_name"], truss_dir,
                         tuple(d.chainlet_cls.__name__ for d in descriptor.dependencies),
                         tuple(str(p) for p in included), loaded.config.volume_mode,
                         descriptor.endpoint.is_websocket)


def generate_chain(entrypoint: type[ChainletBase], out: str | os.PathLike[str], *, chain_name: str | None = None,
                   source: Path | None = None) -> GeneratedChain:
    """Write `<out>/<chain_name>/chainlet_<Name>/` for every chainlet reachable from `entrypoint`."""
    from chains.framework import chain_name as resolve_name
    from chains.framework import raise_validation_errors

    raise_validation_errors()
    name = resolve_name(entrypoint, chain_name)
    source = (source or _module_file(entrypoint)).resolve()
    workspace = source.parent
    descriptors = registry.reachable(entrypoint)
    displays: dict[str, str] = {}
    for d in descriptors:
        if d.display_name in displays:
            raise ChainsDeploymentError(f"chainlets `{displays[d.display_name]}` and `{d.name}` have "
                                        f"the same display name `{d.display_name}`; names must be unique")
        displays[d.display_name] = d.name
    root = Path(out).resolve() / _safe(name)
    root.mkdir(parents=True, exist_ok=True)
    trusses = tuple(_write_chainlet(d, name, source, workspace, root) for d in descriptors)
    manifest = {
        "chain_name": name, "entrypoint": entrypoint.__name__, "source": str(source),
        "chainlets": [{"name": t.name, "display_name": t.display_name, "model_name": t.model_name,
                       "dir": t.path.name, "dependencies": list(t.dependencies),
                       "included_files": list(t.included_files), "volume_mode": t.volume_mode,
                       "websocket": t.websocket}
                      for t in trusses],
    }
    (root / CHAIN_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return GeneratedChain(name, entrypoint.__name__, source, root, trusses)


def read_chain(root: str | os.PathLike[str]) -> GeneratedChain:
    """The chain generated at `root` (<out>/<chain name>), read back from its chain.json."""
    root = Path(root).resolve()
    doc = json.loads((root / CHAIN_MANIFEST).read_text(encoding="utf-8"))
    trusses = tuple(ChainletTruss(c["name"], c["display_name"], c["model_name"], root / c["dir"],
                                  tuple(c["dependencies"]), tuple(c["included_files"]), bool(c["volume_mode"]),
                                  bool(c.get("websocket", False)))
                    for c in doc["chainlets"])
    return GeneratedChain(doc["chain_name"], doc["entrypoint"], Path(doc["source"]), root, trusses)


def _safe(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-.")
    return cleaned or "chain"


def render_chain(source: str | os.PathLike[str], out: str | os.PathLike[str], *, entrypoint: str | None = None,
                 name: str | None = None) -> GeneratedChain:
    loaded = load_chain(source, entrypoint, name)
    return generate_chain(loaded.entrypoint, out, chain_name=loaded.chain_name, source=loaded.source)


__all__ = ["CHAIN_MANIFEST", "ChainletTruss", "GeneratedChain", "generate_chain", "read_chain", "render_chain"]
