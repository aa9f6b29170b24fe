"""all-MiniLM-L6-v2 sentence embeddings in pure numpy; weights baked into the image.

The model_cache entry (use_volume: false) makes the build download the files into the image in
the Hugging Face cache layout ($HF_HUB_CACHE, default /root/.cache/huggingface/hub):
models--sentence-transformers--all-MiniLM-L6-v2/snapshots/<sha>/, with refs/<revision> naming
the sha. The same model also serves the config `truss migrate` writes from it (a `weights:`
source, whose files are at its mount_location before load() runs). The encoder is
`minilm_numpy` from ../_packages (on sys.path via /packages).

Request:  {"texts": ["a sentence", ...]} or {"text": "a sentence"}
Response: {"embeddings": [[384 floats], ...], "model": "all-MiniLM-L6-v2", "dim": 384}
"""

from minilm_numpy import MODEL_NAME, Encoder, model_dir_for, parse_texts


class Model:
    def __init__(self, **kwargs):
        self._config = kwargs.get("config") or {}
        # Bake mode writes no weights manifest, so the resolver is a no-op that returns at once;
        # calling it costs nothing and satisfies the server's "data was collected" check.
        self._lazy_data_resolver = kwargs.get("lazy_data_resolver")
        self._encoder = None

    def load(self):
        if self._lazy_data_resolver is not None:
            self._lazy_data_resolver.block_until_download_complete()
        self._encoder = Encoder.from_dir(model_dir_for(self._config))

    def predict(self, model_input):
        texts = parse_texts(model_input)
        embeddings = self._encoder.encode(texts)
        return {"embeddings": embeddings.tolist(), "model": MODEL_NAME, "dim": int(embeddings.shape[1])}
