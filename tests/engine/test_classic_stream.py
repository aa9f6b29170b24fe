"""The classic builder's JSON stream into StepEvents, no engine needed."""

from __future__ import annotations

from packager.engine.classic import ClassicStreamParser
from packager.engine.events import StepEventKind

CHUNKS = [
    {"stream": "Step 1/3 : FROM pack-base:bookworm-py311"},
    {"stream": "\n"},
    {"stream": " ---> 88a916f96c3a\n"},
    {"stream": "Step 2/3 : RUN echo cached"},
    {"stream": "\n"},
    {"stream": " ---> Using cache\n"},
    {"stream": " ---> 1234567890ab\n"},
    {"stream": "Step 3/3 : RUN echo out; exit 2"},
    {"stream": "\n"},
    {"stream": " ---> Running in 0a1b2c3d4e5f\n"},
    {"stream": "out\nsecond "},
    {"stream": "line\n"},
    {
        "errorDetail": {"message": "The command '/bin/sh -c echo out; exit 2' returned a non-zero code: 2", "code": 2},
        "error": "The command '/bin/sh -c echo out; exit 2' returned a non-zero code: 2",
    },
]


def test_classic_stream_events_and_failure() -> None:
    parser = ClassicStreamParser()
    events = [e for chunk in CHUNKS for e in parser.feed(chunk)]
    kinds = [(e.kind, e.step) for e in events]
    assert (StepEventKind.STARTED, 1) in kinds and (StepEventKind.CACHED, 2) in kinds
    assert (StepEventKind.DONE, 2) in kinds
    assert [e.line for e in events if e.kind is StepEventKind.LOG] == ["out", "second line"]
    assert events[-1].kind is StepEventKind.ERROR and events[-1].step == 3
    assert parser.error and "non-zero code: 2" in parser.error
    assert parser.current is not None and parser.current.name == "[3/3] RUN echo out; exit 2"
    assert [s.name for s in parser.layer_steps()] == ["[2/3] RUN echo cached", "[3/3] RUN echo out; exit 2"]


def test_classic_stream_image_id_from_aux() -> None:
    parser = ClassicStreamParser()
    parser.feed({"stream": "Step 1/1 : FROM x\n"})
    parser.feed({"aux": {"ID": "sha256:" + "a" * 64}})
    events = parser.finish()
    assert parser.image_id == "sha256:" + "a" * 64
    assert [e.kind for e in events] == [StepEventKind.DONE]
