"""Pure-numpy sentence embeddings for sentence-transformers/all-MiniLM-L6-v2 (and other BERT
checkpoints with a Transformer -> mean Pooling -> Normalize pipeline). Needs numpy, safetensors
and tokenizers; no torch.

    from minilm_numpy import Encoder, find_model_dir
    encoder = Encoder.from_dir(find_model_dir(volume_folder="minilm"))
    vectors = encoder.encode(["a sentence", "another one"])  # (2, 384) float32, unit norm
"""

from .encoder import Encoder
from .locate import DEFAULT_REPO_ID, MODEL_CACHE_ROOT, find_model_dir, hub_cache_dir, model_dir_for
from .mathops import erf, gelu
from .request import parse_texts

MODEL_NAME = "all-MiniLM-L6-v2"

__all__ = [
    "DEFAULT_REPO_ID",
    "MODEL_CACHE_ROOT",
    "MODEL_NAME",
    "Encoder",
    "erf",
    "find_model_dir",
    "gelu",
    "hub_cache_dir",
    "model_dir_for",
    "parse_texts",
]
