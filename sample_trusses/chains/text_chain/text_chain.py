"""A three-chainlet sample written for Truss Chains; pack loads it unchanged.

    TextChain (entrypoint) --depends(retries=3)--> ModelInfo   (cached HF repo on a volume)
                           --depends-------------> WordStreamer (streams one word per item)

    pack chains render sample_trusses/chains/text_chain/text_chain.py -o /tmp/chain
    pack chains run sample_trusses/chains/text_chain/text_chain.py
    curl -s -X POST http://127.0.0.1:<port>/v1/models/model:predict -d '{"text": "héllo wörld"}'
"""

import json
import os
from collections.abc import AsyncIterator

import pydantic
import truss_chains as chains
from truss import truss_config

import text_utils

MODEL_CACHE = "/app/model_cache/minilm"


class ModelSummary(pydantic.BaseModel):
    repo: str
    hidden_size: int
    files_verified: list[str]


class ChainAnswer(pydantic.BaseModel):
    words: list[str]
    streamed: list[str]
    model: ModelSummary


class ModelInfo(chains.ChainletBase):
    """Reads its weights' config in __init__: the generated load() constructs it only after the
    prefetch has verified every file in place."""

    remote_config = chains.RemoteConfig(
        name="model-info",
        compute=chains.Compute(cpu_count=1, memory="1Gi"),
        assets=chains.Assets(
            cached=[
                truss_config.ModelRepo(
                    repo_id="sentence-transformers/all-MiniLM-L6-v2",
                    revision="main",
                    use_volume=True,
                    volume_folder="minilm",
                    ignore_patterns=["*.bin", "*.onnx", "onnx/*", "openvino/*", "*.h5", "*.ot",
                                     "*.msgpack"],
                )
            ],
            secret_keys=["hf_access_token"],
        ),
        options=chains.ChainletOptions(env_variables={"OPENBLAS_NUM_THREADS": "1"}),
    )

    def __init__(self, context: chains.DeploymentContext = chains.depends_context()) -> None:
        # The volume folder of the cached repo (TEXT_CHAIN_MODEL_CACHE relocates it for local
        # runs). Nothing here waits: the weights are complete before this line runs.
        self._dir = os.environ.get("TEXT_CHAIN_MODEL_CACHE", MODEL_CACHE)
        with open(os.path.join(self._dir, "config.json"), encoding="utf-8") as fh:
            self._hidden_size = int(json.load(fh)["hidden_size"])
        self._files = sorted(os.listdir(self._dir))

    async def run_remote(self, repo: str = "sentence-transformers/all-MiniLM-L6-v2") -> ModelSummary:
        return ModelSummary(repo=repo, hidden_size=self._hidden_size, files_verified=self._files)


class WordStreamer(chains.ChainletBase):
    """Streams one word per item; multi-byte characters and item boundaries arrive intact."""

    remote_config = chains.RemoteConfig(docker_image=chains.DockerImage(pip_requirements=[]))

    async def run_remote(self, text: str, upper: bool = False) -> AsyncIterator[str]:
        for word in text_utils.words(text):
            yield word.upper() if upper else word


@chains.mark_entrypoint("text-chain")
class TextChain(chains.ChainletBase):
    remote_config = chains.RemoteConfig(compute=chains.Compute(cpu_count=1, predict_concurrency=4))

    def __init__(self, info: ModelInfo = chains.depends(ModelInfo, retries=3),
                 streamer: WordStreamer = chains.depends(WordStreamer, timeout_sec=30.0)) -> None:
        self._info = info
        self._streamer = streamer

    async def run_remote(self, text: str) -> ChainAnswer:
        model = await self._info.run_remote()
        streamed = [item async for item in self._streamer.run_remote(text)]
        return ChainAnswer(words=text_utils.words(text), streamed=streamed, model=model)
