"""Chain file -> one generated truss per reachable chainlet (`pack chains render`).

    load (chains.loading) -> per chainlet: code closure, config.yaml (from RemoteConfig, checked
    by pack's config loader), model/model.py (templates/chains/model.py.j2), packages/ -> chain.json
"""

from .generate import CHAIN_MANIFEST, ChainletTruss, GeneratedChain, generate_chain, read_chain, render_chain

__all__ = ["CHAIN_MANIFEST", "ChainletTruss", "GeneratedChain", "generate_chain", "read_chain", "render_chain"]
