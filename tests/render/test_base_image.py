"""The base image as rendered: the CUDA runtime base for an accelerator and its overrides, pack's
steps as root and the base's own user restored for the server, environment_variables as ENV."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager import api
from packager.engine import BuiltImage, FakeEngine
from packager.plan.base_image import DEFAULT_CUDA_BASE
from packager.plan.model import BuildOptions
from packager.render import render_context

from .conftest import make_truss, pin
from .dockerfile import Instruction, final_stage, index_of, parse

CUDA_311 = "baseten/truss-server-base:3.11-gpu-v0.13.0"
HUB = "/root/.cache/huggingface/hub"


def _render(root: Path, out: Path, **options) -> tuple[object, list[Instruction]]:
    plan, ctx = api.render(root, out, BuildOptions(**options), locked=True)
    return plan, parse((ctx.path / "Dockerfile").read_text())


def _render_with_engine(root: Path, out: Path, engine: FakeEngine, **options):
    """As `pack build` plans: the base image's USER read from the engine first."""
    loaded, plan = api.plan(root, BuildOptions(**options), locked=True, engine=engine)
    ctx = render_context(plan, out)
    return plan, ctx, parse((ctx.path / "Dockerfile").read_text())


def _froms(instructions: list[Instruction]) -> list[str]:
    return [i.args.split(" AS ")[0] for i in instructions if i.keyword == "FROM"]


def _base(user: str) -> BuiltImage:
    return BuiltImage("sha256:" + "d" * 64, ("team/base:1",), 1, user=user)


# --- which base -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("resources", "python", "expected"), [
    ("resources:\n  accelerator: H100\n", "py311", CUDA_311),
    ("resources:\n  accelerator: A10G:2\n", "py312", "baseten/truss-server-base:3.12-gpu-v0.13.0"),
    ("resources:\n  cpu: \"2\"\n", "py311", "python:3.11-slim-bookworm"),
    # use_gpu without an accelerator is ignored, as by Truss: a CPU image.
    ("resources:\n  use_gpu: true\n", "py311", "python:3.11-slim-bookworm"),
])
def test_default_base_follows_the_accelerator(tmp_path: Path, resources: str, python: str, expected: str) -> None:
    root = make_truss(tmp_path / "t", f"python_version: {python}\n{resources}")
    plan, instructions = _render(root, tmp_path / "ctx")
    assert _froms(instructions) == [expected]
    assert plan.base.is_default and plan.base.cuda == expected.startswith("baseten/")
    # The interpreter is found as for any base: python3 on PATH.
    assert final_stage(instructions)[-1].args == '["python3", "-m", "packager.runtime.entrypoint"]'
    assert (plan.accelerator is not None) == ("accelerator" in resources)
    if plan.base.cuda:
        assert any("pack's default CUDA runtime base" in n for n in plan.notes)
    assert DEFAULT_CUDA_BASE.format(version="3.11") == CUDA_311


def test_cuda_base_is_used_by_the_weight_stages_too(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "t", "python_version: py311\nresources:\n  accelerator: H100\nmodel_cache:\n"
                                      "  - repo_id: org/model\n    revision: main\n    use_volume: false\n")
    pin(root, {"config.json": 10})
    _, instructions = _render(root, tmp_path / "ctx")
    assert set(_froms(instructions)) == {CUDA_311}


def test_base_image_overrides_win_over_the_cuda_default(tmp_path: Path) -> None:
    gpu = "python_version: py311\nresources:\n  accelerator: H100\n"
    root = make_truss(tmp_path / "flag", gpu)
    plan, instructions = _render(root, tmp_path / "ctx1", base_image="team/cuda:12")
    assert _froms(instructions) == ["team/cuda:12"] and not plan.base.cuda and plan.accelerator is not None

    root = make_truss(tmp_path / "config", gpu + "base_image:\n  image: team/cuda:12\n"
                                                "  python_executable_path: /opt/conda/bin/python\n")
    plan, instructions = _render(root, tmp_path / "ctx2")
    final = final_stage(instructions)
    assert _froms(instructions) == ["team/cuda:12"]
    assert final[-1].args == '["/opt/conda/bin/python", "-m", "packager.runtime.entrypoint"]'
    assert index_of(final, r"/opt/conda/bin/python -c 'import sys; sys.exit\(0 if \(3, 9\)") > 0
    # --base-image wins over config's base_image (and its interpreter path, which belongs to it).
    plan, instructions = _render(root, tmp_path / "ctx3", base_image="team/other:1")
    assert _froms(instructions) == ["team/other:1"] and plan.base.python == "python3"


# --- as which user --------------------------------------------------------------------------------
def test_pack_steps_run_as_root_and_the_base_user_serves(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "t", "python_version: py311\nrequirements: [numpy]\n"
                                      "build_commands: [\"echo hi > /etc/hi\"]\n")
    engine = FakeEngine(images={"team/base:1": _base("appuser")})
    plan, ctx, instructions = _render_with_engine(root, tmp_path / "ctx", engine, base_image="team/base:1")
    final = final_stage(instructions)
    assert str(final[1]) == "USER root"  # right after FROM: every pack step and build_command is root's
    users = [i.args for i in final if i.keyword == "USER"]
    assert users == ["root", "appuser"]
    # Restored at the end: no step runs as appuser, the server does.
    assert all(i.keyword not in ("RUN", "USER") for i in final[index_of(final, r"^USER appuser") + 1:])
    assert plan.base.user == "appuser" and plan.runtime_user == "appuser"
    assert any("runs as `appuser`" in n for n in ctx.notes)
    assert engine.pulls == []


@pytest.mark.parametrize("user", ["", "root", "0", "0:0", "root:root"])
def test_a_root_base_gets_no_user_switch_back(tmp_path: Path, user: str) -> None:
    root = make_truss(tmp_path / "t", "python_version: py311\n")
    engine = FakeEngine(images={"team/base:1": _base(user)})
    plan, _, instructions = _render_with_engine(root, tmp_path / "ctx", engine, base_image="team/base:1")
    assert [i.args for i in final_stage(instructions) if i.keyword == "USER"] == ["root"]
    assert plan.runtime_user is None


def test_a_base_that_is_not_local_is_pulled_to_read_its_user(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "t", "python_version: py311\n")
    engine = FakeEngine(registry={"team/base:1": _base("1000:1000")})
    plan, _, instructions = _render_with_engine(root, tmp_path / "ctx", engine, base_image="team/base:1")
    assert engine.pulls == ["team/base:1"]
    assert [i.args for i in final_stage(instructions) if i.keyword == "USER"] == ["root", "1000:1000"]

    # Unreachable (offline, no credentials): the plan assumes root and says why.
    plan, ctx, instructions = _render_with_engine(root, tmp_path / "ctx2", FakeEngine(), base_image="team/base:1")
    assert [i.args for i in final_stage(instructions) if i.keyword == "USER"] == ["root"]
    assert any("could not read the USER of base image team/base:1 (not local, and the pull failed" in n
               for n in ctx.notes)


def test_volume_mode_dirs_belong_to_the_server_user(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "t", "python_version: py311\nmodel_cache:\n  - repo_id: org/model\n"
                                      "    revision: main\n    use_volume: true\n    volume_folder: w\n")
    pin(root, {"config.json": 10})
    engine = FakeEngine(images={"team/base:1": _base("appuser")})
    plan, _, instructions = _render_with_engine(root, tmp_path / "ctx", engine, base_image="team/base:1")
    final = final_stage(instructions)
    chown = index_of(final, r"^RUN mkdir -p /app/model_cache /var/lib/pack/cache && "
                            r"chown appuser /app/model_cache /var/lib/pack/cache$")
    volume = index_of(final, r"^VOLUME ")
    assert 0 < chown < volume  # before VOLUME, which would drop later changes to the directory
    from packager import runner

    assert runner.cache_volume_name(plan).endswith("-appuser")  # not a volume a root server made


def test_baked_hf_cache_is_opened_to_the_server_user(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "t", "python_version: py311\nbuild_commands: [\"true\"]\nmodel_cache:\n"
                                      "  - repo_id: org/model\n    revision: main\n    use_volume: false\n")
    pin(root, {"config.json": 10, "model.safetensors": 100})
    engine = FakeEngine(images={"team/base:1": _base("appuser")})
    plan, _, instructions = _render_with_engine(root, tmp_path / "ctx", engine, base_image="team/base:1")
    final = final_stage(instructions)
    opened = index_of(final, rf"^RUN chmod go\+x /root && find {HUB} .*-exec chown appuser")
    env = index_of(final, rf'^ENV HF_HUB_CACHE="{HUB}"$')
    assert index_of(final, r"^COPY --from=pack-weights") < opened < env < index_of(final, r"^RUN true$")
    # As root (no user to open it to) nothing changes.
    plan, instructions = _render(root, tmp_path / "ctx2", base_image="team/base:1")
    assert index_of(final_stage(instructions), r"chmod go\+x /root|HF_HUB_CACHE") == -1


def test_docker_server_run_as_user_id_wins_over_the_base_user(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "config.yaml").write_text(
        "python_version: py311\nbase_image:\n  image: team/base:1\ndocker_server:\n  start_command: ./serve\n"
        "  server_port: 8000\n  predict_endpoint: /p\n  readiness_endpoint: /r\n  liveness_endpoint: /l\n"
        "  run_as_user_id: 1234\n")
    engine = FakeEngine(images={"team/base:1": _base("appuser")})
    plan, _, instructions = _render_with_engine(root, tmp_path / "ctx", engine)
    assert [i.args for i in final_stage(instructions) if i.keyword == "USER"] == ["root", "1234"]
    assert plan.runtime_user == "1234"


# --- environment_variables ------------------------------------------------------------------------
ENV_CONFIG = """\
python_version: py311
build_commands: ["echo build"]
environment_variables:
  LOG_LEVEL: info
  QUOTED: 'say "hi" to $USER and C:\\temp'
  UNICODE: "é ✓"
  EMPTY: ""
  TOKENIZERS_PARALLELISM: "false"
  HF_TOKEN: hf_abcdefghijklmnop
  MULTI: "line1\\nline2"
  "BAD KEY": x
model_cache:
  - repo_id: org/model
    revision: main
    use_volume: false
"""


def test_environment_variables_are_env_before_build_commands(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "t", ENV_CONFIG)
    pin(root, {"config.json": 10})
    plan, ctx = api.render(root, tmp_path / "ctx", BuildOptions(), locked=True)
    text = (ctx.path / "Dockerfile").read_text()
    final = final_stage(parse(text))
    env = index_of(final, r"^ENV LOG_LEVEL=")
    assert index_of(final, r"^COPY --from=pack-weights") < env < index_of(final, r"^RUN echo build$")
    # One ENV instruction, values JSON-quoted with `$` escaped (Dockerfile ENV expands it).
    assert " ".join(final[env].args.split()) == (  # continuation lines joined
        'LOG_LEVEL="info" QUOTED="say \\"hi\\" to \\$USER and C:\\\\temp" UNICODE="é ✓" EMPTY="" '
        'TOKENIZERS_PARALLELISM="false"')
    # Credential-looking, multi-line and unnameable entries stay runtime-only (config.yaml).
    assert "HF_TOKEN" not in text and "hf_abcdefghijklmnop" not in text
    assert "MULTI" not in text and "BAD KEY" not in text
    notes = " | ".join(ctx.notes)
    assert "environment_variables HF_TOKEN look like credentials" in notes
    assert "environment_variables MULTI, BAD KEY cannot be written as a Dockerfile ENV" in notes


def test_an_env_edit_keeps_the_weight_layers(tmp_path: Path) -> None:
    root = make_truss(tmp_path / "t", ENV_CONFIG)
    pin(root, {"config.json": 10, "model.safetensors": 100})
    _, before = _render(root, tmp_path / "ctx1")
    (root / "config.yaml").write_text(ENV_CONFIG.replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
    pin(root, {"config.json": 10, "model.safetensors": 100})
    _, after = _render(root, tmp_path / "ctx2")
    first_change = next(n for n, (a, b) in enumerate(zip(before, after, strict=False)) if str(a) != str(b)
                        and a.keyword != "LABEL")
    assert str(after[first_change]).startswith("ENV LOG_LEVEL=\"debug\"")
    assert all(i.keyword != "COPY" or "--from=pack-weights" not in str(i) for i in after[first_change:])
