"""The model class as its source reads (ast: nothing is imported or run), for what Truss's server
would refuse only once the image starts (truss-compat §2.5, model_wrapper.ModelDescriptor).

`pack check` states those rules here, each at the line of the method: `websocket` takes exactly one
argument besides self (the websocket, not annotated as a Request), is an `async def` without
`yield`, and excludes predict, preprocess and postprocess. The runtime enforces the same rules at
load (packager/runtime/serving/model_spec.py). The build plan reads `defines_websocket` to install
the WebSocket protocol package only into images that serve one.

Only what the class body shows is judged: a method a base class may provide, a decorator that may
change a signature, or a class the file does not define plainly is left to the load.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Problem

EXCLUDED_BY_WEBSOCKET = ("predict", "preprocess", "postprocess")
_WEBSOCKET_SIGNATURE = "async def websocket(self, websocket: fastapi.WebSocket)"
_PLAIN_DECORATORS = {"staticmethod": 0, "classmethod": 1}  # leading parameters the call binds
_WEB_PACKAGES = ("starlette", "fastapi")


@dataclass(frozen=True)
class MethodSource:
    name: str
    line: int
    column: int
    is_async: bool
    yields: bool
    params: int | None  # arguments besides self; None when a decorator may change the signature
    first_annotation: str | None = None  # the source text of that first argument's annotation
    shape_known: bool = True  # False for `name = something` in the class body


@dataclass(frozen=True)
class ModelClassSource:
    file: Path
    name: str
    line: int
    inherits: bool  # names base classes: methods may come from them
    methods: dict[str, MethodSource] = field(default_factory=dict)
    # Module-level names bound to starlette or fastapi (`import fastapi`, `from fastapi import
    # Request as R`): name -> the dotted thing it stands for.
    web_names: dict[str, str] = field(default_factory=dict)

    @property
    def defines_websocket(self) -> bool:
        return "websocket" in self.methods


def read_model_class(model_file: Path, class_name: str) -> ModelClassSource | None:
    """The top-level class `class_name` of model_file, or None when the file cannot be read or
    parsed or does not define it with a `class` statement (the load reports those)."""
    try:
        tree = ast.parse(model_file.read_text(encoding="utf-8"), filename=str(model_file))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None
    found = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    if not found:
        return None
    node = found[-1]  # the last definition is the one the module ends with
    inherits = any(not (isinstance(b, ast.Name) and b.id == "object") for b in node.bases) or bool(node.keywords)
    methods = {}
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            methods[item.name] = _method(item)
        elif isinstance(item, (ast.Assign, ast.AnnAssign)):  # `predict = other`: defined, shape unknown
            targets = item.targets if isinstance(item, ast.Assign) else [item.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    methods[target.id] = MethodSource(target.id, item.lineno, item.col_offset + 1,
                                                      False, False, None, shape_known=False)
    return ModelClassSource(model_file, class_name, node.lineno, inherits, methods, _web_names(tree))


def _web_names(tree: ast.Module) -> dict[str, str]:
    names = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in _WEB_PACKAGES:  # `import a.b` binds `a`; `import a.b as c` binds c to a.b
                    names[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] in _WEB_PACKAGES:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _method(node: ast.FunctionDef | ast.AsyncFunctionDef) -> MethodSource:
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    every = positional + ([args.vararg] if args.vararg else []) + args.kwonlyargs + ([args.kwarg] if args.kwarg else [])
    bound = 1
    params: int | None = None
    names = [d.id if isinstance(d, ast.Name) else "" for d in node.decorator_list]
    if all(n in _PLAIN_DECORATORS for n in names):
        bound = _PLAIN_DECORATORS[names[-1]] if names else 1
        params = max(0, len(every) - bound)
    rest = every[bound:] if params is not None else []
    annotation = ast.unparse(rest[0].annotation) if rest and rest[0].annotation is not None else None
    return MethodSource(node.name, node.lineno, node.col_offset + 1, isinstance(node, ast.AsyncFunctionDef),
                        _yields(node), params, annotation)


def _yields(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A `yield` in the function's own body (not in a nested function or class)."""
    pending: list[ast.AST] = list(node.body)
    while pending:
        child = pending.pop()
        if isinstance(child, (ast.Yield, ast.YieldFrom)):
            return True
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        pending.extend(ast.iter_child_nodes(child))
    return False


def _is_request(annotation: str | None, web_names: dict[str, str]) -> bool:
    """Annotated with starlette's or fastapi's Request, as the module's imports name it."""
    if annotation is None:
        return False
    head, _, rest = annotation.strip("'\"").partition(".")
    full = web_names.get(head)
    if full is None:
        return False
    return f"{full}.{rest}".rsplit(".", 1)[-1] == "Request" if rest else full.rsplit(".", 1)[-1] == "Request"


def model_class_problems(source: ModelClassSource, file: str) -> list[Problem]:
    """Errors for what Truss's server refuses at start; `file` is the model file as shown."""
    websocket = source.methods.get("websocket")
    if websocket is None:
        return []
    where = f"{source.name}.websocket"
    problems = []

    def add(message: str, hint: str) -> None:
        problems.append(Problem(file, where, websocket.line, websocket.column, message, hint))

    both = [name for name in EXCLUDED_BY_WEBSOCKET if name in source.methods]
    if both:
        listed = ", ".join(f"`{n}`" for n in both)
        add(f"the model defines `websocket` and {listed}; Truss's server refuses that combination at "
            f"start: a websocket model does all its work in `websocket`",
            f"remove {listed} (line {', '.join(str(source.methods[n].line) for n in both)}) and "
            f"handle each message in websocket, or remove websocket to serve predict")
    if not websocket.shape_known:
        return problems
    if websocket.params is not None and (websocket.params != 1
                                          or _is_request(websocket.first_annotation, source.web_names)):
        what = ("its argument is annotated as a Request" if websocket.params == 1
                else f"it takes {websocket.params} arguments besides self")
        add(f"`websocket` must take exactly one argument, the websocket; {what}",
            f"declare it `{_WEBSOCKET_SIGNATURE}`")
    if not websocket.is_async:
        add("`websocket` must be an `async def`: Truss's server awaits it on its event loop and "
            "refuses a sync one at start", f"declare it `{_WEBSOCKET_SIGNATURE}`")
    elif websocket.yields:
        add("`websocket` must not `yield`: it answers through the websocket, not by returning a stream",
            "send each reply with `await websocket.send_text(...)` (or send_bytes/send_json)")
    return problems


__all__ = ["MethodSource", "ModelClassSource", "model_class_problems", "read_model_class"]
