"""`truss.base` stand-in."""

from chains import truss_config  # noqa: F401
