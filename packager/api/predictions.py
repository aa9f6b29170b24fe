"""`pack predict`: predictions against a running model, the answer decoded (predict) or open to
read as the model streams it (predict_stream); JSON, or msgpack with binary=True. Kept apart
from the build verbs so that a prediction loads no config schema, engine or pydantic."""

from __future__ import annotations

from ..runner.client import PredictAnswer, answer_text, predict, predict_stream

__all__ = ["PredictAnswer", "answer_text", "predict", "predict_stream"]
