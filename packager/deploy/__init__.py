"""Stage after push: deployment manifests for Kubernetes, Knative and KServe, from the same
BuildPlan as the image (packager.plan) and deploy.yaml beside config.yaml.

    BuildPlan + config facts (workload.py) + DeploySettings (settings.py: deploy.yaml, flags)
      -> pod (pod.py) + warm-pool knobs per target (scaling.py) -> resources (targets.py)
      -> Deployment (manifests.py: the workloads and the operator's notes) -> YAML files (files.py)
"""

from .files import WrittenManifests, to_yaml, write_manifests
from .manifests import Deployment, chain_deployment, truss_deployment
from .settings import DEPLOY_FILENAME, KNOBS, DeploySettings, deploy_settings, load_deploy_file
from .targets import DeployTarget, RenderedWorkload, service_url
from .workload import ChainRole, Workload, dns_name, workload_from

__all__ = ["DEPLOY_FILENAME", "KNOBS", "ChainRole", "DeploySettings", "DeployTarget", "Deployment",
           "RenderedWorkload", "Workload", "WrittenManifests", "chain_deployment", "deploy_settings", "dns_name",
           "load_deploy_file", "service_url", "to_yaml", "truss_deployment", "workload_from", "write_manifests"]
