"""all-MiniLM-L6-v2 sentence embeddings in pure numpy; weights arrive on a runtime volume.

The model_cache entry (use_volume: true, volume_folder: minilm) makes the server prefetch the
files into /app/model_cache/minilm/ while it starts; load() waits for that download before
reading them. The same model also serves the config `truss migrate` writes from it (a
`weights:` source mounted at /app/model_cache/minilm). The encoder is `minilm_numpy` from
../_packages (on sys.path via /packages).

Request:  {"texts": ["a sentence", ...]} or {"text": "a sentence"}
Response: {"embeddings": [[384 floats], ...], "model": "all-MiniLM-L6-v2", "dim": 384}
"""

from minilm_numpy import MODEL_NAME, Encoder, model_dir_for, parse_texts


class Model:
    def __init__(self, **kwargs):
        self._config = kwargs.get("config") or {}
        # Required in volume mode: the load fails unless block_until_download_complete() is called.
        self._lazy_data_resolver = kwargs["lazy_data_resolver"]
        self._encoder = None

    def load(self):
        self._lazy_data_resolver.block_until_download_complete()
        self._encoder = Encoder.from_dir(model_dir_for(self._config))

    def predict(self, model_input):
        texts = parse_texts(model_input)
        embeddings = self._encoder.encode(texts)
        return {"embeddings": embeddings.tolist(), "model": MODEL_NAME, "dim": int(embeddings.shape[1])}
