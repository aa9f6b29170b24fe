"""Finding builder-specific Dockerfile syntax, without a Docker engine."""

from __future__ import annotations

from packager.engine.features import (
    BUILDKIT_FEATURES,
    CLASSIC_FEATURES,
    Feature,
    missing_features,
    parse_instructions,
    scan_dockerfile,
    secret_mount_ids,
)

DOCKERFILE = """\
# syntax comment, not a directive we need
FROM base AS cache_warmer
RUN --mount=type=secret,id=hf_token,target=/run/secrets/hf_token \\
    --mount=type=cache,target=/root/.cache/pip \\
    pip install x
COPY --link --chmod=644 a /a
RUN <<EOF
echo heredoc body with RUN --mount=type=secret,id=fake inside
EOF
RUN --mount=target=/src,source=. ls /src
RUN --network=none true
RUN --mount=type=secret,target=/etc/token cat /etc/token
"""


def test_scan_finds_each_feature_with_its_line() -> None:
    uses = scan_dockerfile(DOCKERFILE)
    found = {(u.feature, u.line) for u in uses}
    assert (Feature.SECRET_MOUNT, 3) in found
    assert (Feature.CACHE_MOUNT, 3) in found
    assert (Feature.COPY_LINK, 6) in found
    assert (Feature.COPY_CHMOD, 6) in found
    assert (Feature.HEREDOC, 7) in found
    assert (Feature.OTHER_MOUNT, 10) in found  # type defaults to bind
    assert (Feature.RUN_NETWORK, 11) in found
    # The heredoc body is not parsed as instructions.
    assert not any(u.line == 8 for u in uses)


def test_continuation_lines_join_into_one_instruction() -> None:
    instructions = parse_instructions(DOCKERFILE)
    run = instructions[1]
    assert run.keyword == "RUN" and run.line == 3
    assert len(run.flags) == 2 and run.rest == "pip install x"
    assert [i.keyword for i in instructions] == ["FROM", "RUN", "COPY", "RUN", "RUN", "RUN", "RUN"]


def test_secret_ids_default_to_target_basename() -> None:
    assert secret_mount_ids(DOCKERFILE) == [(3, "hf_token", False), (12, "token", False)]
    assert secret_mount_ids("FROM x\nRUN --mount=type=secret,id=a,required=true true\n") == [(2, "a", True)]


def test_missing_features_reports_first_use_of_each() -> None:
    uses = scan_dockerfile(DOCKERFILE)
    assert missing_features(uses, BUILDKIT_FEATURES | frozenset(Feature)) == []
    classic = [u.feature for u in missing_features(uses, CLASSIC_FEATURES)]
    assert len(classic) == len(set(classic))
    assert Feature.SECRET_MOUNT in classic and Feature.CACHE_MOUNT in classic
    old_buildkit = {u.feature for u in missing_features(uses, BUILDKIT_FEATURES)}
    assert old_buildkit == {Feature.COPY_LINK, Feature.HEREDOC, Feature.RUN_NETWORK}


def test_escape_directive_changes_continuation_char() -> None:
    text = "# escape=`\nFROM x\nRUN --mount=type=cache,target=/c `\n    echo hi\n"
    instructions = parse_instructions(text)
    assert instructions[1].rest == "echo hi"
    assert [u.feature for u in scan_dockerfile(text)] == [Feature.CACHE_MOUNT]
