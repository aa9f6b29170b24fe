"""The server's JSON log records read as plain lines by the commands that print a container's output."""

from __future__ import annotations

import io
import json
import logging

from packager.runner.log_lines import readable
from packager.runtime.serving.log_format import JsonFormatter


def _record(level: int, message: str, exc: BaseException | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.log_lines")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        if exc is None:
            logger.log(level, message, extra={"request_id_extra": "r1"})
        else:
            try:
                raise exc
            except type(exc):
                logger.exception(message)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue().strip()


def test_a_record_the_server_writes_reads_as_time_level_message_with_its_traceback_below() -> None:
    line = _record(logging.ERROR, "predict failed", ValueError("bad input"))
    doc = json.loads(line)
    text = readable(line)
    first, *rest = text.splitlines()
    assert first == f"{doc['asctime']} ERROR predict failed"
    assert rest[0].startswith("Traceback") and rest[-1] == "ValueError: bad input"


def test_a_record_without_a_traceback_is_one_line() -> None:
    line = _record(logging.INFO, "model loaded in 0.1s")
    assert readable(line).endswith(" INFO model loaded in 0.1s") and "\n" not in readable(line)


def test_other_lines_are_left_as_they_are() -> None:
    for line in ("serving Truss routes on 127.0.0.1:8080", '{"event": "pack.startup_timeline"}',
                 '{"levelname": 3, "message": "x", "asctime": "t"}', '{"levelname": "INFO", "oops',
                 "[1, 2]"):
        assert readable(line) == line
