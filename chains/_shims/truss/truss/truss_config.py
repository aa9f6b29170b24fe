"""`truss.truss_config` stand-in: the config types chain files use."""

from chains.truss_config import *
from chains.truss_config import (  # noqa: F401
    Accelerator,
    DockerAuthSettings,
    ExternalDataItem,
    HealthChecks,
    ModelRepo,
    WeightsSource,
)
