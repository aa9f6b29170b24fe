"""Stage 1 of the pipeline: config.yaml -> validated TrussConfig."""

from .load import CONFIG_FILENAME, LoadedConfig, find_config_file, load_config
from .schema import TrussConfig

__all__ = ["CONFIG_FILENAME", "LoadedConfig", "TrussConfig", "find_config_file", "load_config"]
