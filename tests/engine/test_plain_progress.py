"""Parsing BuildKit --progress=plain output (20.10 built-in client and buildx), no engine needed."""

from __future__ import annotations

from packager.engine.events import StepEventKind
from packager.engine.plain_progress import PlainProgressParser

# Captured from Debian's docker.io 20.10 client with DOCKER_BUILDKIT=1.
LEGACY_FAILURE = """\
#1 [internal] load build definition from Dockerfile
#1 sha256:37d5fb1c2e4e4e82528b65226bf576e6d2caf5b17b72e907035d39a24d6b7c4f
#1 transferring dockerfile: 178B done
#1 DONE 0.0s

#7 [1/4] FROM docker.io/library/pack-base:bookworm-py311
#7 sha256:e740f9854de1c139d5c9eb108ce08de294741e740b7e676538ac871dab00c7c5
#7 DONE 0.0s

#4 [2/4] RUN --mount=type=secret,id=tok cat /run/secrets/tok | wc -c
#4 sha256:514dafd079c7f9a94a4414f1e78a23f55db1a8fd5a32f27eba16288607ad34a9
#4 CACHED

#5 [3/4] RUN echo hi
#5 0.065 hi
#5 DONE 0.1s

#6 [4/4] RUN echo line1; echo err >&2; exit 3
#6 sha256:2eb8b8109de8d632f9be4ff5e54d65b3c7cc79dc1f9a70e2d9ebdec0b7ea420a
#6 0.068 line1
#6 0.068 err
#6 ERROR: executor failed running [/bin/sh -c echo line1; echo err >&2; exit 3]: exit code: 3
------
 > [4/4] RUN echo line1; echo err >&2; exit 3:
------
executor failed running [/bin/sh -c echo line1; echo err >&2; exit 3]: exit code: 3
"""

# buildx style: interleaved parallel stages, re-announced vertices, the ERROR: trailer.
BUILDX_INTERLEAVED = """\
#5 [cache_warmer 2/3] RUN python3 fetch.py
#6 [stage-1 2/5] RUN pip install numpy
#5 0.101 fetching model.safetensors
#6 0.200 Collecting numpy
#5 [cache_warmer 2/3] RUN python3 fetch.py
#5 1.500 done
#5 DONE 1.6s
#6 3.000 ERROR: No matching distribution found for numpy==99
#6 ERROR: process "/bin/sh -c pip install numpy" did not complete successfully: exit code: 1
------
 > [stage-1 2/5] RUN pip install numpy:
0.200 Collecting numpy
------
Dockerfile:7
--------------------
   7 | >>> RUN pip install numpy
--------------------
ERROR: failed to solve: process "/bin/sh -c pip install numpy" did not complete successfully: exit code: 1
"""


def feed(text: str) -> tuple[PlainProgressParser, list]:
    parser = PlainProgressParser()
    events = [event for line in text.splitlines(keepends=True) for event in parser.feed(line)]
    return parser, events


def test_legacy_output_becomes_step_events() -> None:
    parser, events = feed(LEGACY_FAILURE)
    started = [e.name for e in events if e.kind is StepEventKind.STARTED]
    assert started[0] == "[internal] load build definition from Dockerfile"
    assert "[4/4] RUN echo line1; echo err >&2; exit 3" in started
    cached = [e for e in events if e.kind is StepEventKind.CACHED]
    assert [(e.step, e.total, e.cached) for e in cached] == [(2, 4, True)]
    logs = [(e.step, e.line) for e in events if e.kind is StepEventKind.LOG]
    assert (3, "hi") in logs and (4, "line1") in logs and (4, "err") in logs
    assert not any(e.line and e.line.startswith("sha256:") for e in events)
    done = [e for e in events if e.kind is StepEventKind.DONE and e.step == 3]
    assert done[0].duration_s == 0.1

    failure = parser.failure()
    assert failure.step == "[4/4] RUN echo line1; echo err >&2; exit 3"
    assert failure.log_tail == ["line1", "err"]
    assert failure.message.endswith("exit code: 3")
    built, cached_names = parser.steps()
    assert cached_names == ["[2/4] RUN --mount=type=secret,id=tok cat /run/secrets/tok | wc -c"]
    assert built == ["[3/4] RUN echo hi", "[4/4] RUN echo line1; echo err >&2; exit 3"]  # FROM excluded


def test_buildx_interleaved_output_keeps_steps_apart() -> None:
    parser, events = feed(BUILDX_INTERLEAVED)
    started = [e for e in events if e.kind is StepEventKind.STARTED]
    assert [(e.stage, e.step, e.total) for e in started] == [("cache_warmer", 2, 3), ("stage-1", 2, 5)]
    warmer_logs = [e.line for e in events if e.kind is StepEventKind.LOG and e.vertex == "#5"]
    assert warmer_logs == ["fetching model.safetensors", "done"]
    failure = parser.failure()
    assert failure.step == "[stage-1 2/5] RUN pip install numpy"
    assert failure.log_tail == ["Collecting numpy", "ERROR: No matching distribution found for numpy==99"]


def test_failure_before_any_step_uses_the_trailer() -> None:
    parser, _ = feed(
        "#1 [internal] load build definition from Dockerfile\n#1 DONE 0.0s\n"
        "failed to solve with frontend dockerfile.v0: failed to create LLB definition: "
        "dockerfile parse error line 2: Unknown flag: link\n"
    )
    failure = parser.failure()
    assert failure.step is None
    assert "Unknown flag: link" in failure.message


def test_padded_step_numbers_are_steps() -> None:
    # BuildKit pads the step number in stages of 10 or more steps.
    from packager.engine.plain_progress import PlainProgressParser

    parser = PlainProgressParser()
    for line in ["#5 [stage-0  2/14] RUN true", "#5 CACHED", "#6 [stage-0 10/14] RUN x", "#6 CACHED",
                 "#7 [ 3/9] COPY a b", "#7 DONE 0.1s"]:
        parser.feed(line)
    built, cached = parser.steps()
    assert built == ["[ 3/9] COPY a b"]
    assert cached == ["[stage-0  2/14] RUN true", "[stage-0 10/14] RUN x"]
