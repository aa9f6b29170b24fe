"""The server's log lines as Truss's server writes them: one JSON object per line.

    {"asctime": "2026-01-02 03:04:05,678", "levelname": "ERROR", "message": "...",
     <the record's `extra` fields>, "request_id": "...", "exc_info": "Traceback ..."}

These are the keys python-json-logger writes for Truss's format "%(asctime)s %(levelname)s
%(message)s" (truss/templates/shared/log_config.py): `request_id` and `chain_request_id` when
the request carried x-baseten-request-id / x-baseten-chain-request-id, `exc_info` (the formatted
traceback) and `stack_info` only when the record has them. Log pipelines and Truss's own tooling
parse these lines, so the model's own logging (the root logger) is written the same way.

Plain text instead on a terminal, or when DISABLE_JSON_LOGGING is set to anything (Truss's
variable and its rule).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
from typing import Any, TextIO

from packager import constants

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What a JSON record shows when pack prints it for a person (packager/runner/log_lines.py).
PLAIN_KEYS = ("asctime", "levelname", "message")

# Set per request (observe.py), from Truss's headers x-baseten-request-id / -chain-request-id.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("pack_request_id", default=None)
chain_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pack_chain_request_id", default=None)

# Attributes every LogRecord has: anything else on a record came from `extra=` and is written too.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"asctime": self.formatTime(record), "levelname": record.levelname,
                               "message": record.getMessage()}
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                doc[key] = value
        if (rid := request_id.get()) is not None:
            doc["request_id"] = rid
        if (chain_rid := chain_request_id.get()) is not None:
            doc["chain_request_id"] = chain_rid
        if record.exc_info:
            doc["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc_info"] = record.exc_text
        if record.stack_info:
            doc["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(doc, default=str)


def json_logs(stream: TextIO) -> bool:
    """JSON unless `stream` is a terminal or DISABLE_JSON_LOGGING is set."""
    if os.environ.get(constants.DISABLE_JSON_LOGGING):
        return False
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-less stream
        return True


def formatter(stream: TextIO) -> logging.Formatter:
    return JsonFormatter() if json_logs(stream) else logging.Formatter(PLAIN_FORMAT)
