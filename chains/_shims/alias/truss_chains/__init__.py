"""`truss_chains` for chain files written for Truss: pack's `chains` under Truss's name."""

import sys

import chains
# This package is chains under truss_chains' name: its names are chains.__all__.
from chains import *  # noqa: F403
from chains import __all__, streaming, truss_config  # noqa: F401

sys.modules.setdefault(__name__ + ".streaming", streaming)
sys.modules.setdefault(__name__ + ".truss_config", truss_config)
del sys, chains
