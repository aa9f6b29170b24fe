"""pack's Chains API, compatible with `truss_chains` (Truss 0.18.30; see chains-compat.md).

A chain file written for Truss (`import truss_chains as chains`) works unchanged when pack loads
it (`pack chains render|build|run`): the loader maps `truss_chains` to this package and, when no
real `truss` is installed, `truss.truss_config` / `truss.base.truss_config` to
`chains.truss_config`. In your own code, `import chains` works directly.

A ModelBase file (Truss's python-config model, `truss init --python-config`) works the same way
with `pack check|build|run|push my_model.py`: it becomes a truss serving `predict` at Truss's
model route (POST /v1/models/model:predict, the typed arguments as the JSON body).

Deliberate differences from Truss: `retries` counts retries (not attempts) and only transient
failures are retried; streamed items keep their boundaries between chainlets; `run_local` has a
`strict=True` mode; TrussChainlet and EngineBuilderLLMChainlet are not supported yet (a clear error
at class definition). A websocket entrypoint (`run_remote(self, websocket: WebSocketProtocol)`)
is served at /v1/websocket, as in Truss.
"""

from typing import TYPE_CHECKING, Optional

from . import streaming, truss_config
from .errors import (
    ChainsDeploymentError,
    ChainsRuntimeError,
    ChainsUsageError,
    GenericRemoteException,
    MissingDependencyError,
    RemoteErrorDetail,
)
from .framework import (
    ChainletBase,
    EngineBuilderLLMChainlet,
    ModelBase,
    TrussChainlet,
    mark_entrypoint,
)
from .local_run import run_local
from .markers import depends, depends_context
from .public_types import (
    AbsPath,
    Assets,
    BasetenImage,
    ChainletOptions,
    Compute,
    CustomImage,
    DeployedServiceDescriptor,
    DeploymentContext,
    DockerImage,
    Environment,
    GRPCOptions,
    HTTPOptions,
    RemoteConfig,
    RPCOptions,
    WebSocketProtocol,
    WebsocketOptions,
    make_abs_path_here,
)
from .rpc import StubBase
from .truss_config import (
    Accelerator,
    DockerAuthSettings,
    ExternalDataItem,
    HealthChecks,
    ModelRepo,
    WeightsSource,
)

if TYPE_CHECKING:  # pack's code generator: on the machine that runs pack, never in an image
    from packager.chains_codegen import GeneratedChain


def push(entrypoint: type[ChainletBase], chain_name: str, publish: bool = True, promote: bool = True,
         only_generate_trusses: bool = False, remote: str = "baseten", environment: Optional[str] = None,
         progress_bar: object = None, include_git_info: bool = False,
         disable_chain_download: bool = False) -> "GeneratedChain":
    """Truss's deploy verb. pack only generates trusses (`only_generate_trusses=True`, offline):
    build and run them with `pack chains build|run`; there is no Baseten remote."""
    if not only_generate_trusses:
        raise ChainsDeploymentError("pack does not deploy to Baseten: use `pack chains build/push/run`, "
                                    "or push(..., only_generate_trusses=True)")
    import tempfile
    from pathlib import Path

    from packager.chains_codegen import generate_chain

    out = Path(tempfile.mkdtemp(prefix="pack-chain-"))
    return generate_chain(entrypoint, out, chain_name=chain_name)


__all__ = [
    "AbsPath", "Accelerator", "Assets", "BasetenImage", "ChainletBase", "ChainletOptions",
    "ChainsDeploymentError", "ChainsRuntimeError", "ChainsUsageError", "Compute", "CustomImage",
    "DeployedServiceDescriptor", "DeploymentContext", "DockerAuthSettings", "DockerImage",
    "EngineBuilderLLMChainlet", "Environment", "ExternalDataItem", "GRPCOptions",
    "GenericRemoteException", "HTTPOptions", "HealthChecks", "MissingDependencyError", "ModelBase",
    "ModelRepo", "RPCOptions", "RemoteConfig", "RemoteErrorDetail", "StubBase", "TrussChainlet",
    "WebSocketProtocol", "WebsocketOptions", "WeightsSource", "depends", "depends_context", "make_abs_path_here",
    "mark_entrypoint", "push", "run_local", "streaming", "truss_config",
]
