"""`truss_chains` for chain files written for Truss: pack's `chains` under Truss's name."""

import sys

import chains
from chains import *
from chains import __all__, streaming, truss_config  # noqa: F401

sys.modules.setdefault(__name__ + ".streaming", streaming)
sys.modules.setdefault(__name__ + ".truss_config", truss_config)
del sys, chains
