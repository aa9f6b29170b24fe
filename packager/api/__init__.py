"""pack's library API: every verb the `pack` command offers, and what its results carry.

This package (with cli/) is where the stages meet: config -> plan -> render -> builder/engine ->
registry -> runner. The CLI imports nothing else of pack than this package, errors and its
own output module.

    truss:  resolve, check, config_document, schema, init, lock, lock_file, plan, render, build,
            push, run, run_options, last_build, predict, host_secrets, fetch,
            truss_server_packages
    chains: chains_render, chains_build, chains_push, chains_run, chains_run_local,
            dependency_urls, chain_ports
"""

from .. import constants
from ..builder import BuildRecord, BuildResult
from ..engine import Engine, ProgressCallback, StepEvent, StepEventKind
from ..plan.model import BuildOptions, BuildPlan
from ..plan.truss_server_packages import ServerPackages
from ..plan.weight_layers import DEFAULT_MAX_LAYERS, WeightLayerPlan
from ..runtime.transfer import LogReporter, Reporter
from ..runtime.transfer.progress import human_bytes
from ..runtime.transfer.results import FetchResult, FileResult
from .chains import (
    ChainletProgress,
    ChainletPush,
    ChainRun,
    chain_ports,
    chains_build,
    chains_push,
    chains_render,
    chains_run,
    chains_run_local,
    dependency_urls,
)
from .target import Target
from .truss import (
    RunResult,
    TrussArg,
    build,
    check,
    config_document,
    fetch,
    host_secrets,
    init,
    last_build,
    lock,
    lock_file,
    plan,
    predict,
    push,
    render,
    resolve,
    run,
    run_options,
    schema,
    truss_server_packages,
)

__all__ = [
    "DEFAULT_MAX_LAYERS",
    "BuildOptions",
    "BuildPlan",
    "BuildRecord",
    "BuildResult",
    "ChainRun",
    "ChainletProgress",
    "ChainletPush",
    "Engine",
    "FetchResult",
    "FileResult",
    "LogReporter",
    "ProgressCallback",
    "Reporter",
    "RunResult",
    "ServerPackages",
    "StepEvent",
    "StepEventKind",
    "Target",
    "TrussArg",
    "WeightLayerPlan",
    "build",
    "chain_ports",
    "constants",
    "chains_build",
    "chains_push",
    "chains_render",
    "chains_run",
    "chains_run_local",
    "check",
    "config_document",
    "dependency_urls",
    "fetch",
    "host_secrets",
    "human_bytes",
    "init",
    "last_build",
    "lock",
    "lock_file",
    "plan",
    "predict",
    "push",
    "render",
    "resolve",
    "run",
    "run_options",
    "schema",
    "truss_server_packages",
]
