"""`truss.truss_config` stand-in: the config types chain files use."""

# This module is chains.truss_config under truss's name: it has that module's __all__ names.
from chains.truss_config import *  # noqa: F403
