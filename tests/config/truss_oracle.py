"""Run by the reference `truss` package's interpreter (not by pack's): load config files the way
Truss 0.18.30 does and print its verdicts as JSON lines. Input: one truss directory per line."""

import json
import logging
import pathlib
import sys
import warnings

logging.disable(logging.CRITICAL)
warnings.simplefilter("ignore")

from truss.base.truss_config import TrussConfig  # noqa: E402

for line in sys.stdin:
    root = pathlib.Path(line.strip())
    result = {"dir": str(root), "load_ok": False, "push_ok": False, "resolved": None, "error": None}
    try:
        config = TrussConfig.from_yaml(root / "config.yaml")
        result["load_ok"] = True
        result["resolved"] = config.to_dict(verbose=True)
        # `truss push` additionally rejects unknown keys and renders the model_cache mode.
        config.validate_forbid_extra()
        _ = config.model_cache.is_v2  # the property checks the model_cache mode
        result["push_ok"] = True
    except Exception as exc:  # noqa: BLE001 - the verdict is the point; any refusal counts
        result["error"] = f"{type(exc).__name__}: {exc}"[:500]
    print(json.dumps(result), flush=True)
