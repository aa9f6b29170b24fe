"""A container's log line as a person reads it. The server writes one JSON object per line, as
Truss's does (runtime/serving/log_format.py), for log pipelines; `pack run`, `pack watch` and
`pack logs` show those records as the plain lines a terminal run would print."""

from __future__ import annotations

import json

from ..runtime.serving.log_format import PLAIN_KEYS


def readable(line: str) -> str:
    """`line` itself unless it is one of the server's JSON records; then "time LEVEL message",
    its traceback below it."""
    if not line.startswith("{") or '"levelname"' not in line:
        return line
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in PLAIN_KEYS):
        return line
    text = " ".join(record[k] for k in PLAIN_KEYS)
    for trace in ("exc_info", "stack_info"):
        if isinstance(record.get(trace), str):
            text += "\n" + record[trace]
    return text
