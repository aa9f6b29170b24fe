"""pack's library API: every verb the `pack` command offers, and what its results carry.

This package (with cli/) is where the stages meet: config -> plan -> render -> builder/engine ->
registry -> runner. The CLI imports nothing else of pack than this package, errors and its
own output module.

    truss:  resolve, check, config_document, schema, init, lock, lock_file, plan, render, build,
            push, run, run_options, last_build, host_secrets, fetch, truss_server_packages
    predictions: predict, predict_stream, PredictAnswer, answer_text
    devloop: watch, chains_watch (and their events)
    containers: logs, stop, cleanup, attach, stop_running, stop_requested, readable_log_line,
                containers (CleanupReport, CleanupItem, Logs)
    chains: chains_render, chains_build, chains_push, chains_run, chains_run_local,
            dependency_urls, chain_ports
    deploy: deploy_render, deploy_manifests, chains_deploy_render, chains_deploy_manifests,
            deploy_target (DeployResult; Deployment, DeploySettings, DeployTarget from packager.deploy)
"""

import importlib
from typing import TYPE_CHECKING, Any

# Imported on first use: `pack --help` and `pack fetch` need none of pydantic, jinja2, docker or
# huggingface_hub, which the build verbs load (see test_cli_start.py).
_WHERE = {
    "BuildOptions": "..plan.model",
    "BuildPlan": "..plan.model",
    "BuildRecord": "..builder",
    "Building": "..devloop",
    "LogLine": "..devloop",
    "NotApplied": "..devloop",
    "ReloadFailed": "..devloop",
    "Reloaded": "..devloop",
    "Serving": "..devloop",
    "WatchEvent": "..devloop",
    "BuildResult": "..builder",
    "CleanupItem": ".containers",
    "CleanupReport": ".containers",
    "Logs": ".containers",
    "attach": ".containers",
    "cleanup": ".containers",
    "containers": ".containers",
    "logs": ".containers",
    "stop": ".containers",
    "stop_running": ".containers",
    "readable_log_line": ".containers",
    "stop_requested": "..interrupts",
    "ChainRun": ".chains",
    "ChainletProgress": ".chains",
    "ChainletPush": ".chains",
    "DEFAULT_MAX_LAYERS": "..plan.weight_layers",
    "Engine": "..engine",
    "LayerCache": "..engine",
    "BuiltImage": "..engine",
    "FetchResult": "..runtime.transfer.results",
    "FileResult": "..runtime.transfer.results",
    "LogReporter": "..runtime.transfer",
    "PredictAnswer": ".predictions",
    "ProgressCallback": "..engine",
    "Reporter": "..runtime.transfer",
    "RunResult": ".truss",
    "ServerPackages": "..plan.truss_server_packages",
    "StepEvent": "..engine",
    "StepEventKind": "..engine",
    "Target": ".target",
    "TrussArg": ".truss",
    "WeightLayerPlan": "..plan.weight_layers",
    "answer_text": ".predictions",
    "build": ".truss",
    "chain_ports": ".chains",
    "chains_build": ".chains",
    "chains_push": ".chains",
    "chains_render": ".chains",
    "chains_run": ".chains",
    "chains_run_local": ".chains",
    "check": ".truss",
    "config_document": ".truss",
    "constants": "..",
    "dependency_urls": ".chains",
    "DeployResult": ".deploy",
    "Deployment": "..deploy",
    "DeploySettings": "..deploy",
    "DeployTarget": "..deploy",
    "chains_deploy_manifests": ".deploy",
    "chains_deploy_render": ".deploy",
    "deploy_manifests": ".deploy",
    "deploy_render": ".deploy",
    "deploy_target": ".deploy",
    "watch": ".devloop",
    "chains_watch": ".devloop",
    "ChainletEvent": "..devloop.chain",
    "fetch": ".weights",
    "host_secrets": ".truss",
    "human_bytes": "..runtime.transfer.progress",
    "init": ".truss",
    "last_build": ".truss",
    "lock": ".truss",
    "lock_file": ".truss",
    "plan": ".truss",
    "predict": ".predictions",
    "predict_stream": ".predictions",
    "push": ".truss",
    "render": ".truss",
    "resolve": ".truss",
    "run": ".truss",
    "run_options": ".truss",
    "schema": ".truss",
    "truss_server_packages": ".truss",
}

if TYPE_CHECKING:
    from .. import constants
    from ..builder import BuildRecord, BuildResult
    from ..deploy import Deployment, DeploySettings, DeployTarget
    from ..devloop import Building, LogLine, NotApplied, Reloaded, ReloadFailed, Serving, WatchEvent
    from ..engine import BuiltImage, Engine, LayerCache, ProgressCallback, StepEvent, StepEventKind
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
    from .deploy import (
        DeployResult,
        chains_deploy_manifests,
        chains_deploy_render,
        deploy_manifests,
        deploy_render,
        deploy_target,
    )
    from .containers import (
        CleanupItem,
        CleanupReport,
        Logs,
        attach,
        cleanup,
        containers,
        logs,
        readable_log_line,
        stop,
        stop_running,
    )
    from ..interrupts import stop_requested
    from ..devloop.chain import ChainletEvent
    from .devloop import chains_watch, watch
    from .predictions import PredictAnswer, answer_text, predict, predict_stream
    from .target import Target
    from .weights import fetch
    from .truss import (
        RunResult,
        TrussArg,
        build,
        check,
        config_document,
        host_secrets,
        init,
        last_build,
        lock,
        lock_file,
        plan,
        push,
        render,
        resolve,
        run,
        run_options,
        schema,
        truss_server_packages,
    )


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where, __name__), name) if where != ".." else \
        importlib.import_module(f"packager.{name}")
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_MAX_LAYERS",
    "BuildOptions",
    "BuildPlan",
    "BuildRecord",
    "Building",
    "LogLine",
    "NotApplied",
    "ReloadFailed",
    "Reloaded",
    "Serving",
    "WatchEvent",
    "BuildResult",
    "LayerCache",
    "BuiltImage",
    "ChainRun",
    "ChainletEvent",
    "CleanupItem",
    "CleanupReport",
    "Logs",
    "attach",
    "cleanup",
    "containers",
    "logs",
    "stop",
    "stop_running",
    "readable_log_line",
    "stop_requested",
    "ChainletProgress",
    "ChainletPush",
    "Engine",
    "FetchResult",
    "FileResult",
    "LogReporter",
    "PredictAnswer",
    "ProgressCallback",
    "Reporter",
    "RunResult",
    "ServerPackages",
    "StepEvent",
    "StepEventKind",
    "Target",
    "TrussArg",
    "WeightLayerPlan",
    "answer_text",
    "build",
    "chain_ports",
    "constants",
    "chains_build",
    "chains_push",
    "chains_render",
    "chains_run",
    "chains_run_local",
    "chains_watch",
    "check",
    "config_document",
    "dependency_urls",
    "DeployResult",
    "Deployment",
    "DeploySettings",
    "DeployTarget",
    "chains_deploy_manifests",
    "chains_deploy_render",
    "deploy_manifests",
    "deploy_render",
    "deploy_target",
    "fetch",
    "host_secrets",
    "human_bytes",
    "init",
    "last_build",
    "lock",
    "lock_file",
    "plan",
    "predict",
    "predict_stream",
    "push",
    "render",
    "resolve",
    "run",
    "run_options",
    "schema",
    "truss_server_packages",
    "watch",
]
