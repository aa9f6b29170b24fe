"""Real builds with BuildKit and the classic builder on top of the offline base image."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from packager.engine import (
    BuildFailedError,
    BuildKitEngine,
    BuildRequest,
    ClassicEngine,
    MissingCapabilityError,
    StepEvent,
    StepEventKind,
)
from packager.errors import EngineError
from tests.fixtures.docker_env import (
    DockerCleanup,
    find_in_image,
    run_in_image,
    unique,
    write_context,
)

pytestmark = pytest.mark.docker


def test_secret_mount_reaches_the_step_but_no_layer_history_or_config(
    buildkit_engine: BuildKitEngine, base_image: str, docker_client: Any, docker_cleanup: DockerCleanup, tmp_path: Path
) -> None:
    secret = f"hf_SECRET_{uuid.uuid4().hex}"
    (tmp_path / "token").write_text(secret)
    # The step proves it saw the value by storing its hash; the value itself must go nowhere.
    context = write_context(
        tmp_path / "ctx",
        # NONCE makes the steps new: BuildKit does not key its cache on secret values.
        f"FROM {base_image}\n"
        "ARG PUBLIC_ARG=none\nARG NONCE\n"
        "RUN --mount=type=secret,id=hf_token sha256sum /run/secrets/hf_token | cut -d' ' -f1 > /token.sha256\n"
        "RUN --mount=type=secret,id=hf_token,target=/etc/hf_token test -s /etc/hf_token && echo saw-token\n",
    )
    tag = docker_cleanup.image(f"{unique()}:secret")
    events: list[StepEvent] = []
    image = buildkit_engine.build(BuildRequest(context, tag=tag, secrets={"hf_token": tmp_path / "token"},
                                               build_args={"PUBLIC_ARG": "x",
                                                           "NONCE": secret[-8:]}), progress=events.append)
    assert image.id.startswith("sha256:") and tag in image.tags and image.size > 0
    assert image.builder == buildkit_engine.info.builder.value
    assert any(e.kind is StepEventKind.LOG and e.line == "saw-token" for e in events)
    assert not any(secret in (e.line or "") for e in events)

    stored = run_in_image(docker_client, tag, ["cat", "/token.sha256"]).strip()
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert find_in_image(docker_client, tag, secret.encode()) == []
    # The scan itself works: a value that is in the image is found.
    assert find_in_image(docker_client, tag, stored.encode())


def test_missing_secret_value_is_an_error_not_an_empty_mount(
    buildkit_engine: BuildKitEngine, base_image: str, tmp_path: Path
) -> None:
    context = write_context(tmp_path, f"FROM {base_image}\nRUN --mount=type=secret,id=hf_token true\n")
    with pytest.raises(EngineError, match="mounts build secret 'hf_token' but no value was given"):
        buildkit_engine.build(BuildRequest(context, tag="pack-test-never:built"))


def test_cache_mount_persists_between_builds_and_stays_out_of_the_image(
    buildkit_engine: BuildKitEngine, base_image: str, docker_client: Any, docker_cleanup: DockerCleanup, tmp_path: Path
) -> None:
    cache_id = unique("pack-test-cache")
    context = write_context(
        tmp_path,
        f"FROM {base_image}\nARG NONCE\n"
        f"RUN --mount=type=cache,id={cache_id},target=/cache "
        "echo run-$NONCE >> /cache/runs && wc -l < /cache/runs > /runs-seen\n",
    )
    first = buildkit_engine.build(BuildRequest(context, tag=docker_cleanup.image(f"{cache_id}:1"),
                                               build_args={"NONCE": "1"}))
    # A changed build arg re-runs the step (like a changed requirements file would); the cache
    # mount's content must survive it. (--no-cache would drop cache mounts too.)
    second = buildkit_engine.build(BuildRequest(context, tag=docker_cleanup.image(f"{cache_id}:2"),
                                                build_args={"NONCE": "2"}))
    assert first.id != second.id
    assert run_in_image(docker_client, first.id, ["cat", "/runs-seen"]).strip() == "1"
    assert run_in_image(docker_client, second.id, ["cat", "/runs-seen"]).strip() == "2"
    assert run_in_image(docker_client, second.id, ["ls", "-A", "/cache"]).strip() == ""


def test_failing_run_names_the_step_and_its_last_lines(
    buildkit_engine: BuildKitEngine, base_image: str, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path,
        f"FROM {base_image}\nRUN echo {unique()}\n"
        "RUN for i in $(seq 1 40); do echo line-$i; done; sleep 0.3; echo 'boom: missing thing' >&2; exit 3\n",
    )
    events: list[StepEvent] = []
    with pytest.raises(BuildFailedError) as info:
        buildkit_engine.build(BuildRequest(context, tag=f"{unique()}:fail"), progress=events.append)
    error = info.value
    assert error.step is not None and error.step.startswith("[3/3] RUN for i in")
    assert "exit code 3" in error.summary
    # stdout and stderr reach BuildKit separately; the sleep keeps their order predictable.
    assert error.log_tail[-1] == "boom: missing thing"
    assert "line-40" in error.log_tail and "line-1" not in error.log_tail  # only the tail is kept
    assert "boom: missing thing" in str(error)
    assert any(e.kind is StepEventKind.ERROR and e.step == 3 for e in events)


def test_rebuild_after_code_edit_reruns_only_later_steps(
    buildkit_engine: BuildKitEngine, base_image: str, docker_cleanup: DockerCleanup, tmp_path: Path
) -> None:
    name = unique()
    context = write_context(
        tmp_path,
        f"FROM {base_image}\nRUN echo {name} > /deps\nCOPY model.py /app/model.py\nRUN python3 -c 'print(1)'\n",
        {"model.py": "v = 1\n"},
    )
    first = buildkit_engine.build(BuildRequest(context, tag=docker_cleanup.image(f"{name}:1")))
    (context / "model.py").write_text("v = 2\n")
    events: list[StepEvent] = []
    second = buildkit_engine.build(BuildRequest(context, tag=docker_cleanup.image(f"{name}:2")), progress=events.append)
    assert first.cached_steps == () and len(first.built_steps) == 3
    assert second.cached_steps == (f"[2/4] RUN echo {name} > /deps",)
    assert second.built_steps == ("[3/4] COPY model.py /app/model.py", "[4/4] RUN python3 -c 'print(1)'")
    assert [e.step for e in events if e.kind is StepEventKind.CACHED] == [2]


def test_engine_too_old_for_copy_link_says_so(buildkit_engine: BuildKitEngine, base_image: str, tmp_path: Path) -> None:
    from packager.engine import Feature

    if Feature.COPY_LINK in buildkit_engine.info.features:
        pytest.skip("this engine's Dockerfile frontend supports COPY --link")
    context = write_context(tmp_path, f"FROM {base_image}\nCOPY --link a /a\n", {"a": "x"})
    with pytest.raises(MissingCapabilityError, match="COPY/ADD --link") as info:
        buildkit_engine.build(BuildRequest(context))
    assert "line 2" in str(info.value)


# --- classic builder -----------------------------------------------------------------------------
def test_classic_builds_plain_dockerfiles(
    classic_engine: ClassicEngine, base_image: str, docker_client: Any, docker_cleanup: DockerCleanup, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path, f"FROM {base_image}\nARG WHO\nRUN echo hello-$WHO > /hello\nCOPY a /a\n", {"a": "x"}
    )
    tag = docker_cleanup.image(f"{unique()}:classic")
    events: list[StepEvent] = []
    image = classic_engine.build(BuildRequest(context, tag=tag, build_args={"WHO": "pack"}), progress=events.append)
    assert tag in image.tags and image.builder == "classic"
    assert run_in_image(docker_client, tag, ["cat", "/hello"]).strip() == "hello-pack"
    assert [e.step for e in events if e.kind is StepEventKind.STARTED] == [1, 2, 3, 4]
    again = classic_engine.build(BuildRequest(context, tag=tag, build_args={"WHO": "pack"}))
    assert again.id == image.id and len(again.cached_steps) == 3


@pytest.mark.parametrize(
    ("dockerfile_tail", "feature"),
    [
        ("RUN --mount=type=secret,id=tok true\n", "secret mounts"),
        ("RUN --mount=type=cache,target=/root/.cache true\n", "cache mounts"),
    ],
)
def test_classic_refuses_buildkit_only_syntax_by_name(
    classic_engine: ClassicEngine, base_image: str, tmp_path: Path, dockerfile_tail: str, feature: str
) -> None:
    context = write_context(tmp_path, f"FROM {base_image}\n{dockerfile_tail}")
    (tmp_path / "tok").write_text("v")
    with pytest.raises(MissingCapabilityError) as info:
        classic_engine.build(BuildRequest(context, secrets={"tok": tmp_path / "tok"} if "secret" in feature else None))
    assert feature in str(info.value) and "line 2" in str(info.value)
    assert info.value.hint and "buildx" in info.value.hint


def test_classic_failing_run_names_the_step(classic_engine: ClassicEngine, base_image: str, tmp_path: Path) -> None:
    context = write_context(tmp_path, f"FROM {base_image}\nRUN echo before-fail; exit 7\n")
    # (a failed step leaves no cache entry, so re-running this test re-runs the step)
    with pytest.raises(BuildFailedError) as info:
        classic_engine.build(BuildRequest(context, tag=f"{unique()}:fail"))
    assert info.value.step == "[2/2] RUN echo before-fail; exit 7"
    assert "exit code 7" in info.value.summary
    assert info.value.log_tail == ["before-fail"]


def test_a_shared_cache_mount_race_is_built_again_once_and_other_failures_are_not(
    buildkit_engine: BuildKitEngine, base_image: str, docker_cleanup: DockerCleanup, tmp_path: Path
) -> None:
    # BuildKit answers "flightcontrol: exceeded retry timeout" when parallel steps race for one
    # cache mount; a CLI that says so on its first call stands in for the race.
    calls = tmp_path / "calls"
    cli = tmp_path / "docker-racing"
    cli.write_text(
        "#!/bin/sh\n"
        f"echo call >> {calls}\n"
        f"if [ \"$(wc -l < {calls})\" = 1 ]; then\n"
        "  echo '#5 [2/2] RUN true'\n"
        "  echo '#5 ERROR: executor failed running [/bin/sh -c true]: flightcontrol: exceeded retry timeout'\n"
        "  exit 1\n"
        "fi\n"
        f"exec {buildkit_engine.info.cli} \"$@\"\n"
    )
    cli.chmod(0o755)
    racing = BuildKitEngine(dataclasses.replace(buildkit_engine.info, cli=str(cli)))
    context = write_context(tmp_path / "ctx", f"FROM {base_image}\nRUN true\n")
    tag = docker_cleanup.image(f"{unique()}:race")
    image = racing.build(BuildRequest(context, tag=tag))
    assert tag in image.tags and calls.read_text().count("call") == 2

    broken = write_context(tmp_path / "broken", f"FROM {base_image}\nRUN exit 3\n")
    calls.write_text("call\n")  # past the race: the real CLI answers, and a real failure is final
    with pytest.raises(BuildFailedError):
        racing.build(BuildRequest(broken, tag=docker_cleanup.image(f"{unique()}:broken")))
    assert calls.read_text().count("call") == 2
