"""A pure-numpy BERT sentence encoder for sentence-transformers checkpoints such as
all-MiniLM-L6-v2: Transformer -> mean Pooling -> Normalize (modules.json), float32.

Mirrors sentence-transformers + transformers' BertModel:
- tokenizer.json with truncation at `max_seq_length` (sentence_bert_config.json; 256 here,
  overriding the 128 baked into this checkpoint's tokenizer.json) and padding to the longest
  sequence of each batch;
- embeddings = LayerNorm(word + absolute position + token type);
- N post-LN encoder layers: multi-head self-attention with an additive key mask, exact (erf) GELU
  feed-forward;
- mean of the last hidden state over non-padding tokens, then L2 normalisation.
Texts are encoded in batches of similar length (sorted by token count) and returned in input order.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

import numpy as np

from .mathops import gelu, layer_norm, softmax_

_MASK_VALUE = np.finfo(np.float32).min  # what transformers adds for masked keys


@dataclass(frozen=True)
class _Layer:
    qkv_w: np.ndarray  # (hidden, 3*hidden), input-major
    qkv_b: np.ndarray
    out_w: np.ndarray  # (hidden, hidden)
    out_b: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    up_w: np.ndarray  # (hidden, intermediate)
    up_b: np.ndarray
    down_w: np.ndarray  # (intermediate, hidden)
    down_b: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _sentence_pipeline(model_dir: Path) -> bool:
    """Check modules.json (+ the pooling config) describes Transformer -> mean Pooling
    [-> Normalize]; return whether it normalises. Without modules.json: mean + normalize."""
    modules = _read_json(model_dir / "modules.json")
    if modules is None:
        return True
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise NotImplementedError(
            f"{model_dir / 'modules.json'}: only Transformer -> Pooling [-> Normalize] pipelines "
            f"are supported, found {kinds}"
        )
    pooling_cfg = model_dir / modules[1].get("path", "") / "config.json"
    cfg = _read_json(pooling_cfg) or {}
    enabled = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v is True]
    if enabled not in ([], ["pooling_mode_mean_tokens"]):
        raise NotImplementedError(f"{pooling_cfg}: only mean pooling is supported, found {enabled}")
    return "Normalize" in kinds


class Encoder:
    """Sentence embeddings with numpy only. Build with `Encoder.from_dir(path)`."""

    def __init__(
        self,
        weights: dict[str, np.ndarray],
        tokenizer,
        *,
        num_heads: int,
        layer_norm_eps: float = 1e-12,
        max_seq_length: int = 256,
        normalize: bool = True,
        lowercase: bool = False,
        pad_id: int = 0,
    ) -> None:
        w = {k[5:] if k.startswith("bert.") else k: v for k, v in weights.items()}

        def get(name: str) -> np.ndarray:
            if name not in w:
                raise KeyError(f"weight {name!r} missing from the checkpoint")
            return np.ascontiguousarray(w[name], dtype=np.float32)

        self.word = get("embeddings.word_embeddings.weight")
        self.position = get("embeddings.position_embeddings.weight")
        self.token_type = get("embeddings.token_type_embeddings.weight")
        self.emb_ln_w = get("embeddings.LayerNorm.weight")
        self.emb_ln_b = get("embeddings.LayerNorm.bias")
        self.hidden = self.word.shape[1]
        if self.hidden % num_heads:
            raise ValueError(f"hidden size {self.hidden} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = self.hidden // num_heads
        self.eps = float(layer_norm_eps)
        self.max_seq_length = min(int(max_seq_length), self.position.shape[0])
        self.normalize = normalize
        self.lowercase = lowercase
        self.pad_id = pad_id

        self.layers: list[_Layer] = []
        i = 0
        while f"encoder.layer.{i}.attention.self.query.weight" in w:
            p = f"encoder.layer.{i}."
            attn = p + "attention."
            qkv_w = np.concatenate(
                [get(attn + f"self.{n}.weight") for n in ("query", "key", "value")], axis=0)
            qkv_b = np.concatenate([get(attn + f"self.{n}.bias") for n in ("query", "key", "value")])
            self.layers.append(_Layer(
                # torch Linear stores (out, in); keep (in, out) contiguous for x @ W.
                qkv_w=np.ascontiguousarray(qkv_w.T), qkv_b=qkv_b,
                out_w=np.ascontiguousarray(get(attn + "output.dense.weight").T),
                out_b=get(attn + "output.dense.bias"),
                ln1_w=get(attn + "output.LayerNorm.weight"), ln1_b=get(attn + "output.LayerNorm.bias"),
                up_w=np.ascontiguousarray(get(p + "intermediate.dense.weight").T),
                up_b=get(p + "intermediate.dense.bias"),
                down_w=np.ascontiguousarray(get(p + "output.dense.weight").T),
                down_b=get(p + "output.dense.bias"),
                ln2_w=get(p + "output.LayerNorm.weight"), ln2_b=get(p + "output.LayerNorm.bias"),
            ))
            i += 1
        if not self.layers:
            raise KeyError("no encoder.layer.N weights found in the checkpoint")

        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        self.tokenizer = tokenizer

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_dir(cls, path: os.PathLike | str) -> Encoder:
        """Load config.json, model.safetensors, tokenizer.json (+ sentence-transformers configs)."""
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        model_dir = Path(path)
        config = _read_json(model_dir / "config.json")
        if config is None:
            raise FileNotFoundError(f"{model_dir / 'config.json'} not found")
        if config.get("model_type", "bert") != "bert":
            raise NotImplementedError(f"model_type {config.get('model_type')!r} is not BERT")
        if config.get("hidden_act", "gelu") != "gelu":
            raise NotImplementedError(f"hidden_act {config.get('hidden_act')!r}: only exact gelu")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise NotImplementedError("only absolute position embeddings are supported")
        st = _read_json(model_dir / "sentence_bert_config.json") or {}
        normalize = _sentence_pipeline(model_dir)
        for name in ("model.safetensors", "tokenizer.json"):
            if not (model_dir / name).is_file():
                raise FileNotFoundError(f"{model_dir / name} not found")
        weights = load_file(str(model_dir / "model.safetensors"))
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        encoder = cls(
            weights,
            tokenizer,
            num_heads=int(config["num_attention_heads"]),
            layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
            max_seq_length=int(st.get("max_seq_length") or config.get("max_position_embeddings", 512)),
            normalize=normalize,
            lowercase=bool(st.get("do_lower_case", False)),
            pad_id=int(config.get("pad_token_id", 0)),
        )
        if len(encoder.layers) != int(config.get("num_hidden_layers", len(encoder.layers))):
            raise ValueError(
                f"config.json says {config['num_hidden_layers']} layers, the checkpoint has "
                f"{len(encoder.layers)}")
        return encoder

    @property
    def dim(self) -> int:
        return self.hidden

    # -- inference ----------------------------------------------------------------------------

    def tokenize(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """(ids, type_ids) per text, truncated to max_seq_length, unpadded."""
        prepared = [t.strip() for t in texts]  # sentence-transformers strips each text
        if self.lowercase:
            prepared = [t.lower() for t in prepared]
        return [(e.ids, e.type_ids) for e in self.tokenizer.encode_batch(prepared)]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embeddings, shape (len(texts), dim), float32, rows in input order."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("encode() takes a list of strings")
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        if not texts:
            return out
        tokens = self.tokenize(texts)
        order = sorted(range(len(tokens)), key=lambda i: -len(tokens[i][0]))
        for start in range(0, len(order), max(1, int(batch_size))):
            idx = order[start:start + batch_size]
            length = max(len(tokens[i][0]) for i in idx)
            ids = np.full((len(idx), length), self.pad_id, dtype=np.int64)
            types = np.zeros((len(idx), length), dtype=np.int64)
            mask = np.zeros((len(idx), length), dtype=np.float32)
            for row, i in enumerate(idx):
                n = len(tokens[i][0])
                ids[row, :n] = tokens[i][0]
                types[row, :n] = tokens[i][1]
                mask[row, :n] = 1.0
            out[idx] = self._forward(ids, types, mask)
        return out

    def _forward(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        b, n = ids.shape
        h, d, heads = self.hidden, self.head_dim, self.num_heads
        x = self.word[ids] + self.position[:n][None] + self.token_type[types]
        x = layer_norm(x, self.emb_ln_w, self.emb_ln_b, self.eps).reshape(b * n, h)
        key_bias = ((1.0 - mask) * _MASK_VALUE).astype(np.float32)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(d))
        scores = np.empty((b, heads, n, n), dtype=np.float32)
        ctx = np.empty((b, n, heads, d), dtype=np.float32)
        for layer in self.layers:
            qkv = x @ layer.qkv_w
            qkv += layer.qkv_b
            qkv = qkv.reshape(b, n, 3, heads, d)
            # One 2-D BLAS call per (sequence, head): numpy's stacked matmul over strided views
            # is many times slower than this loop.
            for i in range(b):
                for j in range(heads):
                    np.matmul(qkv[i, :, 0, j], qkv[i, :, 1, j].T, out=scores[i, j])
            scores *= scale
            scores += key_bias
            probs = softmax_(scores)
            for i in range(b):
                for j in range(heads):
                    np.matmul(probs[i, j], qkv[i, :, 2, j], out=ctx[i, :, j])
            attn = ctx.reshape(b * n, h) @ layer.out_w
            attn += layer.out_b
            attn += x
            x = layer_norm(attn, layer.ln1_w, layer.ln1_b, self.eps)
            up = x @ layer.up_w
            up += layer.up_b
            gelu(up)
            down = up @ layer.down_w
            down += layer.down_b
            down += x
            x = layer_norm(down, layer.ln2_w, layer.ln2_b, self.eps)
        x = x.reshape(b, n, h)
        summed = np.einsum("bnh,bn->bh", x, mask)
        counts = np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1e-9))
        emb = summed / counts
        if self.normalize:
            norms = np.linalg.norm(emb, axis=1, keepdims=True)
            emb = emb / np.maximum(norms, np.float32(1e-12))
        return emb.astype(np.float32, copy=False)
