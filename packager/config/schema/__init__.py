"""pydantic models of the Truss config.yaml schema (Truss 0.18.30 fields and defaults)."""

from .base import ConfigModel, Violation, Violations
from .truss import PYTHON_VERSIONS, TrussConfig

__all__ = ["ConfigModel", "PYTHON_VERSIONS", "TrussConfig", "Violation", "Violations"]
