"""A ModelBase model (Truss's python-config DX, as `truss init --python-config` writes one):
`pack check|build|run|push sample_trusses/model-base/echo_model.py` turns this file into a truss
serving `predict` at POST /v1/models/model:predict, e.g. {"text": "hello", "times": 2}."""

import truss_chains as chains


class EchoModel(chains.ModelBase):
    # Config lives in the class: model_name, image, compute, assets, options.
    remote_config: chains.RemoteConfig = chains.RemoteConfig(
        name="echo-model", compute=chains.Compute(cpu_count=1, memory="512Mi"),
        options=chains.ChainletOptions(env_variables={"ECHO_PREFIX": "echo: "}),
    )

    def __init__(self, context: chains.DeploymentContext = chains.depends_context()) -> None:
        import os

        self._prefix = os.environ.get("ECHO_PREFIX", "")

    def predict(self, text: str, times: int = 1) -> list[str]:
        return [self._prefix + text] * times
