"""Request validation shared by the minilm sample trusses."""

from __future__ import annotations

from typing import Any

MAX_TEXTS = 256
MAX_CHARS = 100_000  # per text; the encoder reads at most max_seq_length tokens anyway


def parse_texts(model_input: Any) -> list[str]:
    """The texts of a request `{"texts": [str, ...]}` or `{"text": str}`; ValueError otherwise."""
    example = 'send {"texts": ["first sentence", "second"]} or {"text": "one sentence"}'
    if not isinstance(model_input, dict):
        raise ValueError(f"expected a JSON object, got {type(model_input).__name__}: {example}")
    unknown = sorted(str(k) for k in model_input if k not in ("text", "texts"))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}: {example}")
    if ("text" in model_input) == ("texts" in model_input):
        raise ValueError(f"give exactly one of 'text' and 'texts': {example}")
    if "text" in model_input:
        texts = [model_input["text"]]
        where = lambda i: "'text'"  # noqa: E731
    else:
        texts = model_input["texts"]
        if not isinstance(texts, list):
            raise ValueError(f"'texts' must be a list of strings, got {type(texts).__name__}")
        if not texts:
            raise ValueError("'texts' is empty: give at least one string")
        if len(texts) > MAX_TEXTS:
            raise ValueError(f"'texts' has {len(texts)} items; at most {MAX_TEXTS} per request")
        where = lambda i: f"'texts[{i}]'"  # noqa: E731
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{where(i)} must be a string, got {type(text).__name__}")
        if len(text) > MAX_CHARS:
            raise ValueError(f"{where(i)} has {len(text)} characters; at most {MAX_CHARS}")
    return list(texts)
