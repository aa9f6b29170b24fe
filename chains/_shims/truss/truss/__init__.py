"""pack's minimal stand-in for `truss` (only `truss_config`), used when truss is not installed."""

from chains import truss_config  # noqa: F401
