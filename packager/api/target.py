"""What a command's TRUSS argument names, resolved once: a truss directory (optionally with
another config file in place of its config.yaml, `--config FILE` as in Truss), a config file,
or a ModelBase .py file turned into a truss in pack's cache."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import CONFIG_FILENAME, LoadedConfig, load_config
from ..errors import PackError

if TYPE_CHECKING:
    from ..chains_codegen.model_source import ModelTruss


@dataclass(frozen=True)
class Target:
    truss_dir: Path  # a directory, or a config file whose directory is the truss (`pack check DIR/config.yaml`)
    config_file: Path | None = None  # --config: replaces DIR/config.yaml
    model: ModelTruss | None = None  # set when generated from a ModelBase file

    @property
    def argument(self) -> Path:
        """What the user named (the .py file for a model), for messages."""
        return self.model.source if self.model is not None else self.truss_dir

    @property
    def key(self) -> Path:
        """One absolute path per truss and config: the config file, or the model's source."""
        if self.model is not None:
            return self.model.source.resolve()
        if self.config_file is not None:
            return self.config_file.resolve()
        if self.truss_dir.is_dir():
            return (self.truss_dir / CONFIG_FILENAME).resolve()
        return self.truss_dir.resolve()

    def load(self, *, allow_unknown_keys: bool = False) -> LoadedConfig:
        """The validated config; a model's problems are placed in its source file."""
        if self.model is None:
            return load_config(self.truss_dir, allow_unknown_keys=allow_unknown_keys,
                               config_file=self.config_file)
        from ..errors import ConfigError

        try:
            loaded = load_config(self.truss_dir, allow_unknown_keys=allow_unknown_keys)
        except ConfigError as exc:
            raise ConfigError(problems=self.model.relocate(exc.problems),
                              warnings=self.model.relocate(exc.warnings)) from None
        return self.model.located(loaded)


def is_model_source(path: str | os.PathLike[str]) -> bool:
    """A .py file names a ModelBase model (`truss push my_model.py`); anything else a truss."""
    return Path(path).suffix == ".py"


def resolve_target(truss: str | os.PathLike[str] | Target, config: str | os.PathLike[str] | None = None) -> Target:
    """A Target for the TRUSS argument and --config; a ModelBase file's truss is generated here."""
    if isinstance(truss, Target):
        return truss
    path = Path(truss)
    config_file = Path(config) if config is not None else None
    if is_model_source(path):
        from ..chains_codegen.model_source import generate_model_truss

        if config_file is not None:
            raise PackError(f"--config cannot be used with the model file {path}",
                            hint="a ModelBase file's config comes from its class's remote_config")
        model = generate_model_truss(path)
        return Target(model.truss_dir, None, model)
    return Target(path, config_file)


__all__ = ["Target", "is_model_source", "resolve_target"]
