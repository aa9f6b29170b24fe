"""`pack deploy render` and `pack chains deploy render`: Kubernetes, Knative or KServe manifests
of a truss or a chain (see packager/deploy/)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .. import api
from . import output
from .chains_cmds import chain_options
from .plan_cmds import build_options, config_option, truss_dir_argument

_KNOB_FLAGS = {
    "min_replicas": "Replicas kept warm at all times (0: scale to zero where the target can).",
    "max_replicas": "Upper bound of the autoscaler.",
    "buffer_replicas": "Spare replicas beyond the load (what each target can express: README).",
    "scaledown_window": "Seconds an idle replica is kept before scaling down.",
    "concurrency_target": "Requests in flight per replica the autoscaler aims at (default: predict_concurrency).",
    "initial_replicas": "Replicas started when the workload is created.",
}


def deploy_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--target, -o, --deploy-file, --namespace, the warm-pool knobs (collected as `knobs`), --json."""

    @functools.wraps(command)
    def collect(*args: Any, **kwargs: Any) -> Any:
        kwargs["knobs"] = {name: kwargs.pop(name) for name in _KNOB_FLAGS}
        return command(*args, **kwargs)

    f: Callable[..., Any] = collect
    for name, text in reversed(_KNOB_FLAGS.items()):
        f = click.option(f"--{name.replace('_', '-')}", name, type=click.IntRange(min=0), default=None,
                         help=text + " Overrides deploy.yaml.")(f)
    f = click.option("--json", "as_json", is_flag=True, help="Print one JSON result line.")(f)
    f = click.option("--namespace", help="Namespace of every resource (default: deploy.yaml's, else default).")(f)
    f = click.option("--deploy-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Read this file instead of deploy.yaml beside config.yaml (or the chain file).")(f)
    f = click.option("-o", "--output", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
                     help="Directory to write the manifests to (replaced as a whole).")(f)
    # A plain string checked by the API (api.deploy_target): naming the choices here would load
    # packager.deploy, and pydantic with it, for every `pack --help`.
    f = click.option("--target", required=True, metavar="k8s|knative|kserve",
                     help="k8s: Deployment + Service (+ HPA); knative: a Knative Service; kserve: an "
                          "InferenceService.")(f)
    return f


def _report(result: api.DeployResult, as_json: bool) -> None:
    written = result.written
    if as_json:
        output.text(json.dumps({"target": str(result.deployment.target), "path": str(written.path),
                                "files": [str(f) for f in written.files], "notes": list(result.deployment.notes),
                                "resources": [f"{r['kind']}/{r['metadata']['name']}"
                                              for r in result.deployment.manifests()]}))
        return
    for note in result.deployment.notes:
        output.note(note)
    output.success(f"{len(result.deployment.manifests())} {result.deployment.target} resource(s) in {written.path}")
    for workload, name in zip(result.deployment.workloads, written.files, strict=True):
        kinds = ", ".join(f"{r['kind']}/{r['metadata']['name']}" for r in workload.resources)
        output.text(f"  {name}  {kinds}")
    output.text(f"apply: kubectl apply -f {written.path}")


@click.group("deploy")
def deploy_group() -> None:
    """Deployment manifests: Kubernetes, Knative or KServe, from the image's own plan."""


@deploy_group.command("render")
@truss_dir_argument
@deploy_options
@click.option("--image", required=True, help="The pushed image to run (`pack push --image REF`).")
@build_options
@config_option
def render_command(truss_dir: Path, target: str, out: Path, deploy_file: Path | None, namespace: str | None,
                   as_json: bool, knobs: dict[str, int | None], image: str, options: api.BuildOptions,
                   locked: bool, config_file: Path | None = None) -> None:
    """Write the manifests that run TRUSS_DIR's image on a cluster: warm-pool knobs, the node
    weights cache, probes bound to the runtime, secrets, resources."""
    result = api.deploy_render(truss_dir, out, target=target, image=image, deploy_file=deploy_file, knobs=knobs,
                               namespace=namespace, options=options, locked=locked, config=config_file)
    _report(result, as_json)


@click.group("deploy")
def chains_deploy_group() -> None:
    """Deployment manifests of a chain: one workload per chainlet, wired by Service DNS names."""


@chains_deploy_group.command("render")
@chain_options
@deploy_options
@click.option("--registry", required=True, help="REGISTRY[/NAMESPACE] the chainlet images were pushed to.")
@click.option("--tag", required=True, help="Tag of the pushed chainlet images (`pack chains push --tag`).")
@build_options
def chains_render_command(source: Path, entrypoint: str | None, name: str | None, target: str, out: Path,
                          deploy_file: Path | None, namespace: str | None, as_json: bool,
                          knobs: dict[str, int | None], registry: str, tag: str, options: api.BuildOptions,
                          locked: bool) -> None:
    """Write the manifests of every chainlet reachable from the entrypoint, the entrypoint exposed."""
    result = api.chains_deploy_render(source, out, target=target, registry=registry, tag=tag,
                                      entrypoint=entrypoint, name=name, deploy_file=deploy_file, knobs=knobs,
                                      namespace=namespace, options=options, locked=locked)
    _report(result, as_json)


__all__ = ["chains_deploy_group", "deploy_group"]
