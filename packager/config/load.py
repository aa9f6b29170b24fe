"""Stage 1: config.yaml -> validated TrussConfig, with every problem positioned.

parse (YAML with positions) -> normalise (Truss's input coercions, literal secrets pulled out)
-> validate (pydantic, all errors at once) -> check the files the config names. Warnings are
returned as data; errors are raised together as one ConfigError.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from ..errors import ConfigError, Problem
from packager.runtime.secret_lookup import is_unset

from .model_class import ModelClassSource, model_class_problems, read_model_class
from .problems import problem_at, problems_from_validation, unknown_key_problem
from .schema import TrussConfig
from .schema.resources import use_gpu_ignored
from .yaml_source import Path as YamlPath
from .yaml_source import YamlDocument, YamlSyntaxError, parse

CONFIG_FILENAME = "config.yaml"
RESERVED_ENV = ("PORT", "HOSTNAME")
# Whole name parts only: HF_TOKEN and AWS_SECRET_ACCESS_KEY look like credentials,
# TOKENIZERS_PARALLELISM does not.
_SECRETISH_ENV = re.compile(r"(?:^|[^A-Z0-9])(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY)"
                            r"(?:$|[^A-Z0-9])", re.I)


def env_looks_like_credential(name: str, value: str) -> bool:
    """An environment_variables entry whose name says credential and whose value is filled in:
    warned about at load, and kept out of the image's ENV (it stays in config.yaml only)."""
    return bool(_SECRETISH_ENV.search(name)) and not is_unset(value)


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config and what was learnt while loading it."""

    truss_dir: Path
    file: Path
    config: TrussConfig
    warnings: tuple[Problem, ...] = ()
    # Secret values written literally in config.yaml. The config itself carries null for them;
    # these are kept only so later stages can prove no output contains them.
    literal_secret_values: frozenset[str] = frozenset()
    # The model class as model.py's source shows it (None: docker_server, or not read plainly).
    model_class: ModelClassSource | None = None

    def resolved(self) -> dict[str, Any]:
        """The fully expanded config, as Truss writes it into images (secret values null)."""
        return self.config.model_dump(mode="json")


def find_config_file(truss_dir: Path) -> Path:
    if truss_dir.is_file():
        return truss_dir
    if not truss_dir.is_dir():
        raise ConfigError(problems=[Problem(
            str(truss_dir), "", None, None, "no such truss directory",
            "pass the directory that holds config.yaml (create one with `pack init DIR`)",
        )])
    path = truss_dir / CONFIG_FILENAME
    if path.is_file():
        return path
    if (truss_dir / "config.yml").is_file():
        raise ConfigError(problems=[Problem(
            str(truss_dir / "config.yml"), "", None, None,
            "no truss configuration file ending in .yaml, but found one ending in .yml",
            f"rename it: mv {truss_dir / 'config.yml'} {path}",
        )])
    raise ConfigError(problems=[Problem(
        str(path), "", None, None, "config.yaml not found",
        f"create it (e.g. `pack init {truss_dir}`) or pass the truss directory",
    )])


def other_config_file(truss_dir: Path, config_file: Path) -> Path:
    """`--config FILE` (as `truss push DIR --config FILE`): FILE replaces DIR/config.yaml while
    model/, data/ and packages/ stay relative to DIR. FILE is taken as given (relative to the
    current directory, as in Truss)."""
    if not truss_dir.is_dir():
        raise ConfigError(problems=[Problem(
            str(truss_dir), "", None, None, "no such truss directory",
            f"with --config {config_file}, pass the directory that holds model/ (and data/, packages/)",
        )])
    if not config_file.is_file():
        what = "is a directory, not a config file" if config_file.is_dir() else "config file not found"
        raise ConfigError(problems=[Problem(
            str(config_file), "", None, None, what,
            "pass an existing YAML file to --config (a path relative to the current directory)",
        )])
    return config_file


def read_document(path: Path) -> YamlDocument:
    """A YAML file with the position of every key and value; ConfigError when it cannot be read
    or parsed (config.yaml, and deploy.yaml beside it)."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(problems=[Problem(file, "", None, None, f"cannot read the file: {exc}",
                                            "make it a readable UTF-8 text file")]) from None
    try:
        return parse(text)
    except YamlSyntaxError as exc:
        raise ConfigError(problems=[Problem(
            file, "", exc.mark.line if exc.mark else None, exc.mark.column if exc.mark else None,
            f"YAML syntax error: {exc.message}", "fix the YAML at this line (indentation, quotes, colons)",
        )]) from None


def load_config(truss_dir: str | os.PathLike[str], *, allow_unknown_keys: bool = False,
                config_file: str | os.PathLike[str] | None = None) -> LoadedConfig:
    """Load and validate a truss directory's config.yaml (or `config_file` in its place, the
    truss directory staying the root of every path it names); raise ConfigError with all problems."""
    if config_file is not None:
        root = Path(truss_dir)
        path = other_config_file(root, Path(config_file))
    else:
        path = find_config_file(Path(truss_dir))
        root = path.parent
    file = str(path)
    doc = read_document(path)

    errors: list[Problem] = []
    warnings: list[Problem] = []
    for dup in doc.duplicates:
        errors.append(Problem(
            file, _dotted(dup.path), dup.second.line, dup.second.column,
            f"duplicate key `{dup.path[-1]}` (first defined at line {dup.first.line})",
            "keep only one of the two; YAML silently uses the last one",
        ))
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        errors.append(problem_at(file, doc, (), "config.yaml must be a mapping of keys to values",
                                 "start the file with keys such as `model_name: my-model`"))
        raise ConfigError(problems=errors)

    data, secrets = _normalise(file, doc, warnings)
    config = _validate(file, doc, data, allow_unknown_keys, errors, warnings)
    model_class = None
    if config is not None:
        _check_files(file, doc, root, config, errors, warnings)
        _check_weights_support(file, doc, config, errors)
        model_class = _check_model_class(file, doc, root, config, errors, warnings)
    if errors:
        raise ConfigError(problems=_sorted(errors), warnings=_sorted(warnings))
    assert config is not None
    return LoadedConfig(root, path, config, tuple(_sorted(warnings)), frozenset(secrets), model_class)


def _dotted(path: YamlPath) -> str:
    from .problems import format_path

    return format_path(path)


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0, p.path))


def _normalise(file: str, doc: YamlDocument, warnings: list[Problem]) -> tuple[dict[str, Any], list[str]]:
    """Apply Truss's input coercions on a copy of the data; pull literal secrets out."""
    data = copy.deepcopy(doc.data)
    if "hf_cache" in data:
        warnings.append(problem_at(file, doc, ("hf_cache",), "`hf_cache` is deprecated",
                                   "rename it to `model_cache`", "warning"))
        hf_cache = data.pop("hf_cache")
        if "model_cache" not in data:
            data["model_cache"] = hf_cache or []
    env = data.get("environment_variables")
    if isinstance(env, dict):
        coerced = {}
        for key, value in env.items():
            if isinstance(value, (dict, list)):
                warnings.append(problem_at(file, doc, ("environment_variables", key),
                                           f"environment variable `{key}` is a {type(value).__name__}; "
                                           "it is passed as its Python text form",
                                           "quote the value you mean as a string", "warning", False))
            coerced[key] = str(value).lower() if isinstance(value, bool) else str(value)
            if key in RESERVED_ENV:
                warnings.append(problem_at(file, doc, ("environment_variables", key),
                                           f"`{key}` is reserved by the platform and will be overwritten at runtime",
                                           "use another name", "warning"))
            elif env_looks_like_credential(str(key), coerced[key]):
                warnings.append(problem_at(file, doc, ("environment_variables", key),
                                           f"`{key}` looks like a credential; environment_variables are "
                                           "stored in the image's config.yaml",
                                           f"declare it under `secrets: {{{key}: null}}` and supply it at run time",
                                           "warning"))
        data["environment_variables"] = coerced
    secrets_found: list[str] = []
    secrets = data.get("secrets")
    if isinstance(secrets, dict):
        for name, value in secrets.items():
            if isinstance(value, str) and not is_unset(value):
                secrets_found.append(value)
                warnings.append(problem_at(file, doc, ("secrets", name),
                                           f"secret `{name}` has a value written in config.yaml; pack "
                                           "never copies it into an image or uses it",
                                           f"write `{name}: null` and supply the value at run time "
                                           f"(/secrets/{name} or TRUSS_SECRET_{name})",
                                           "warning", False))
                secrets[name] = None
    if use_gpu_ignored(data.get("resources")):
        warnings.append(problem_at(file, doc, ("resources", "use_gpu"),
                                   "use_gpu: true without an accelerator is ignored (as by Truss): the image "
                                   "builds FROM a CPU base and `pack run` requests no GPU",
                                   'set resources.accelerator (e.g. accelerator: "A10G") to get a GPU, '
                                   "or remove use_gpu", "warning"))
    if data.get("python_version") == "py39":
        warnings.append(problem_at(file, doc, ("python_version",), "Python 3.9 is deprecated",
                                   "use py311 or newer", "warning", False))
    return data, secrets_found


def _validate(file: str, doc: YamlDocument, data: dict[str, Any], allow_unknown: bool,
              errors: list[Problem], warnings: list[Problem]) -> TrussConfig | None:
    try:
        return TrussConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        problems, unknown = problems_from_validation(file, doc, exc, data)
    severity = "warning" if allow_unknown else "error"
    for path in unknown:
        (warnings if allow_unknown else errors).append(unknown_key_problem(file, doc, path, severity))
    if not allow_unknown or not unknown:
        errors.extend(problems)
        return None
    # Unknown keys are only warnings: drop them and validate what remains.
    for path in unknown:
        _drop(data, path)
    try:
        return TrussConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        problems, _ = problems_from_validation(file, doc, exc, data)
        errors.extend(problems)
        return None


def _drop(data: Any, path: YamlPath) -> None:
    for part in path[:-1]:
        data = data[part]
    data.pop(path[-1], None)


def _check_files(file: str, doc: YamlDocument, root: Path, config: TrussConfig,
                 errors: list[Problem], warnings: list[Problem]) -> None:
    """Rules about the files a config names: Truss finds these only at build or push."""
    if config.requirements_file:
        req = root / config.requirements_file
        if not req.is_file():
            errors.append(problem_at(file, doc, ("requirements_file",),
                                     f"requirements_file `{config.requirements_file}` does not exist",
                                     f"create {req} or fix the path (relative to the truss directory)",
                                     prefer_key=False))
        elif req.name == "uv.lock" and not (req.parent / "pyproject.toml").is_file():
            errors.append(problem_at(file, doc, ("requirements_file",),
                                     "uv.lock needs a pyproject.toml beside it",
                                     f"add {req.parent / 'pyproject.toml'}", prefer_key=False))
    for i, pkg_dir in enumerate(config.external_package_dirs):
        target = Path(pkg_dir) if os.path.isabs(pkg_dir) else root / pkg_dir
        if not target.is_dir():
            errors.append(problem_at(file, doc, ("external_package_dirs", i),
                                     f"external package directory `{pkg_dir}` is not a directory",
                                     "fix the path (absolute, or relative to the truss directory)",
                                     prefer_key=False))
    server = config.docker_server
    model_dir = root / config.model_module_dir
    if server is not None:
        if server.server_port == 8080:
            warnings.append(problem_at(file, doc, ("docker_server", "server_port"),
                                       "server_port 8080 is the port pack's route proxy uses; the proxy moves "
                                       "to another port and Truss's routes (/v1/models/model:predict) are "
                                       "served there, while your server keeps 8080",
                                       "use another port (e.g. 8000) to keep the Truss routes on 8080",
                                       "warning", False))
        if (model_dir / config.model_class_filename).is_file():
            warnings.append(problem_at(file, doc, ("docker_server",),
                                       f"{config.model_module_dir}/{config.model_class_filename} exists but "
                                       "docker_server images do not run it",
                                       "remove the model directory, or remove docker_server", "warning"))
    elif config.trt_llm is None and config.bis_llm is None:
        model_file = model_dir / config.model_class_filename
        if not model_file.is_file():
            errors.append(problem_at(file, doc, ("model_class_filename",),
                                     f"model file `{config.model_module_dir}/{config.model_class_filename}` "
                                     "does not exist",
                                     "create it with a `class Model` (see `pack init`), or set docker_server",
                                     prefer_key=True))


def _check_model_class(file: str, doc: YamlDocument, root: Path, config: TrussConfig,
                       errors: list[Problem], warnings: list[Problem]) -> ModelClassSource | None:
    """What Truss's server would refuse in the model class at start (model_class.py)."""
    if config.docker_server is not None or config.trt_llm is not None or config.bis_llm is not None:
        return None
    model_file = root / config.model_module_dir / config.model_class_filename
    source = read_model_class(model_file, config.model_class_name)
    if source is None:
        return None
    errors.extend(model_class_problems(source, str(model_file)))
    if source.defines_websocket and config.runtime.transport.kind != "websocket":
        warnings.append(problem_at(
            file, doc, ("runtime", "transport", "kind"),
            f"the model defines `websocket` (served at /v1/websocket), but runtime.transport.kind is "
            f"`{config.runtime.transport.kind}`: Baseten routes WebSocket connections only to "
            f"`kind: websocket` deployments (pack serves it either way)",
            "set runtime.transport.kind: websocket", "warning"))
    return source


# `weights:` schemes Truss accepts that only Baseten's platform fetches (no local client here).
_PLATFORM_SCHEMES = {"azure": "Azure Blob Storage", "r2": "Cloudflare R2", "cw": "CoreWeave object storage"}


def _check_weights_support(file: str, doc: YamlDocument, config: TrussConfig, errors: list[Problem]) -> None:
    """What Truss accepts but pack cannot fetch is an error here, before any build starts."""
    for i, source in enumerate(config.weights):
        name = _PLATFORM_SCHEMES.get(source.scheme)
        if name is not None:
            errors.append(problem_at(file, doc, ("weights", i, "source"),
                                     f"pack cannot fetch {source.scheme}:// sources ({name})",
                                     "copy the files to hf://, s3://, gs:// or an https:// URL and point "
                                     "source there", prefer_key=False))
        method = source.auth.auth_method.value if source.auth else None
        if method is not None and method != "CUSTOM_SECRET":
            errors.append(problem_at(file, doc, ("weights", i, "auth", "auth_method"),
                                     f"auth_method {method} is an identity of Baseten's platform; pack cannot "
                                     "assume it on this machine",
                                     "use auth_method: CUSTOM_SECRET with auth_secret_name naming a secret "
                                     "that holds the credential", prefer_key=False))
