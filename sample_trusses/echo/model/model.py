"""Echo model: returns its input with the greeting from the environment and the data file."""

import os
from pathlib import Path


class Model:
    def __init__(self, config=None, data_dir=None, secrets=None, **kwargs):
        self._data_dir = Path(data_dir or "data")
        self._secrets = secrets
        self._greeting = None

    def load(self):
        motto = self._data_dir / "motto.txt"
        self._greeting = os.environ.get("GREETING", "hi")
        self._motto = motto.read_text().strip() if motto.exists() else ""

    def predict(self, model_input):
        if not isinstance(model_input, dict):
            raise ValueError("expected a JSON object such as {\"text\": \"hello\"}")
        return {"echo": model_input, "greeting": self._greeting, "motto": self._motto}
