"""The deploy verbs: a truss or a chain -> Kubernetes, Knative or KServe manifests, built from the
same BuildPlan as its image (`pack deploy render`, `pack chains deploy render`)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ..deploy import (
    ChainRole,
    Deployment,
    DeploySettings,
    DeployTarget,
    Workload,
    WrittenManifests,
    chain_deployment,
    deploy_settings,
    dns_name,
    truss_deployment,
    workload_from,
    write_manifests,
)
from ..chains_codegen.local_run import chainlet_urls
from ..errors import DeployError
from ..plan.model import BuildOptions
from ..plan.sources import Credentials
from ..registry.reference import parse_reference
from .chains import chainlet_image, chains_render
from .target import resolve_target
from .truss import TrussArg, plan

Knobs = Mapping[str, int | None]


@dataclass(frozen=True)
class DeployResult:
    deployment: Deployment
    written: WrittenManifests


def deploy_target(name: str | DeployTarget) -> DeployTarget:
    try:
        return DeployTarget(str(name))
    except ValueError:
        raise DeployError(f"unknown deploy target `{name}`",
                          hint=f"use one of {', '.join(t.value for t in DeployTarget)}") from None


def _image(ref: str) -> str:
    parse_reference(ref)  # a malformed reference is a RegistryError with the expected format
    return ref.strip()


def _settings(where: Path, deploy_file: str | os.PathLike[str] | None, knobs: Knobs | None,
              namespace: str | None) -> DeploySettings:
    settings = deploy_settings(where, Path(deploy_file) if deploy_file is not None else None)
    settings = settings.with_overrides(**dict(knobs or {}))
    if namespace is not None:
        settings = replace(settings, namespace=namespace)
    return settings


def deploy_manifests(truss_dir: TrussArg, *, target: str | DeployTarget, image: str,
                     deploy_file: str | os.PathLike[str] | None = None, knobs: Knobs | None = None,
                     namespace: str | None = None, options: BuildOptions | None = None, locked: bool = False,
                     credentials: Credentials | None = None, config: str | os.PathLike[str] | None = None
                     ) -> tuple[Deployment, frozenset[str]]:
    """The manifests of one truss (nothing written): its plan (offline against pack.lock, as
    `pack render`) with deploy.yaml beside config.yaml (or deploy_file) and the knobs over it.
    Returns the deployment and config.yaml's literal secret values (which no output may hold)."""
    kind = deploy_target(target)
    resolved = resolve_target(truss_dir, config)
    settings = _settings(resolved.truss_dir, deploy_file, knobs, namespace)
    loaded, build_plan = plan(resolved, options, locked=locked, credentials=credentials)
    workload = workload_from(loaded, build_plan, _image(image), settings.name)
    return truss_deployment(workload, settings, kind), loaded.literal_secret_values


def deploy_render(truss_dir: TrussArg, out: str | os.PathLike[str], *, target: str | DeployTarget, image: str,
                  deploy_file: str | os.PathLike[str] | None = None, knobs: Knobs | None = None,
                  namespace: str | None = None, options: BuildOptions | None = None, locked: bool = False,
                  credentials: Credentials | None = None,
                  config: str | os.PathLike[str] | None = None) -> DeployResult:
    """`pack deploy render`: write the truss's manifests into `out` (replaced as a whole)."""
    deployment, secrets = deploy_manifests(truss_dir, target=target, image=image, deploy_file=deploy_file,
                                           knobs=knobs, namespace=namespace, options=options, locked=locked,
                                           credentials=credentials, config=config)
    return DeployResult(deployment, write_manifests(deployment.workloads, Path(out), secrets))


def chains_deploy_manifests(source: str | os.PathLike[str], *, target: str | DeployTarget, registry: str, tag: str,
                            entrypoint: str | None = None, name: str | None = None,
                            deploy_file: str | os.PathLike[str] | None = None, knobs: Knobs | None = None,
                            namespace: str | None = None, options: BuildOptions | None = None,
                            locked: bool = False, credentials: Credentials | None = None,
                            trusses: str | os.PathLike[str] | None = None) -> tuple[Deployment, frozenset[str]]:
    """The manifests of a chain: one workload per chainlet, image REGISTRY/<model name>:TAG (as
    `pack chains push --tag` names them), dependencies wired through one ConfigMap of Service
    DNS names; deploy.yaml beside the chain file, its `chainlets:` entries per chainlet."""
    from chains.glue import DYNAMIC_CONFIG_KEY

    kind = deploy_target(target)
    settings = _settings(Path(source).parent, deploy_file, None, namespace)
    with tempfile.TemporaryDirectory(prefix="pack-chain-deploy-") as scratch:
        chain = chains_render(source, trusses if trusses is not None else scratch, entrypoint=entrypoint, name=name)
        chain_name = dns_name(chain.chain_name)
        config_map = f"{chain_name}-chain-config"
        workloads: list[Workload] = []
        per_chainlet: list[DeploySettings] = []
        secrets: frozenset[str] = frozenset()
        for chainlet in chain.chainlets:
            # The flags win over deploy.yaml, its `chainlets:` entries included.
            own = settings.for_chainlet(chainlet.name, chainlet.display_name).with_overrides(**dict(knobs or {}))
            loaded, build_plan = plan(chainlet.path, options, locked=locked, credentials=credentials)
            role = ChainRole(chain_name, chainlet.name, chainlet.display_name, config_map,
                             entrypoint=chainlet.name == chain.entrypoint)
            image = _image(chainlet_image(registry, chainlet, tag))
            workloads.append(workload_from(loaded, build_plan, image, dns_name(f"{chain_name}-{chainlet.name}"), role))
            per_chainlet.append(own)
            secrets |= loaded.literal_secret_values
        unknown = sorted(set(dict(settings.chainlets)) - {n for c in chain.chainlets for n in (c.name, c.display_name)})
        if unknown:
            raise DeployError(f"{settings.source or 'deploy.yaml'}: chainlets.{unknown[0]} names no chainlet of "
                              f"chain `{chain.chain_name}`",
                              hint=f"use one of {', '.join(c.name for c in chain.chainlets)}")
        deployment = chain_deployment(chain_name, workloads, per_chainlet, kind, DYNAMIC_CONFIG_KEY,
                                      lambda bases: chainlet_urls(chain, bases))
        return deployment, secrets


def chains_deploy_render(source: str | os.PathLike[str], out: str | os.PathLike[str], *,
                         target: str | DeployTarget, registry: str, tag: str, entrypoint: str | None = None,
                         name: str | None = None, deploy_file: str | os.PathLike[str] | None = None,
                         knobs: Knobs | None = None, namespace: str | None = None,
                         options: BuildOptions | None = None, locked: bool = False,
                         credentials: Credentials | None = None) -> DeployResult:
    """`pack chains deploy render`: write the chain's manifests into `out`."""
    deployment, secrets = chains_deploy_manifests(
        source, target=target, registry=registry, tag=tag, entrypoint=entrypoint, name=name,
        deploy_file=deploy_file, knobs=knobs, namespace=namespace, options=options, locked=locked,
        credentials=credentials)
    return DeployResult(deployment, write_manifests(deployment.workloads, Path(out), secrets))


__all__ = ["DeployResult", "chains_deploy_manifests", "chains_deploy_render", "deploy_manifests", "deploy_render",
           "deploy_target"]
