"""Chain commands take the entrypoint as a positional argument as well as by flag, as
`truss chains push SOURCE ENTRYPOINT` does; two different ones are a usage error."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from chains.framework import errors, registry
from packager.cli.main import main

CHAIN = """
    import truss_chains as chains


    class EpHelper(chains.ChainletBase):
        async def run_remote(self, x: int) -> int:
            return x + 1


    class EpFront(chains.ChainletBase):
        def __init__(self, helper: EpHelper = chains.depends(EpHelper)) -> None:
            self._helper = helper

        async def run_remote(self, x: int) -> int:
            return await self._helper.run_remote(x)
"""


@pytest.fixture
def chain(tmp_path: Path):
    """A chain file with two chainlets and no @mark_entrypoint; unloaded after the test."""
    by_name, descriptors = dict(registry.by_name), dict(registry.descriptors)
    path = tmp_path / "ep_chain.py"
    path.write_text(textwrap.dedent(CHAIN))
    yield path
    sys.modules.pop("ep_chain", None)
    errors.take()
    registry.by_name.clear()
    registry.by_name.update(by_name)
    registry.descriptors.clear()
    registry.descriptors.update(descriptors)


def _rendered(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_positional_entrypoint_picks_the_chainlet(chain: Path, tmp_path: Path, capsys) -> None:
    assert main(["chains", "render", str(chain), "-o", str(tmp_path / "none")]) == 1
    assert "no chainlet is marked" in capsys.readouterr().err
    assert main(["chains", "render", str(chain), "EpFront", "-o", str(tmp_path / "a"), "--json"]) == 0
    manifest = _rendered(capsys)
    assert manifest["entrypoint"] == "EpFront"
    assert [c["name"] for c in manifest["chainlets"]] == ["EpHelper", "EpFront"]
    assert main(["chains", "render", str(chain), "EpHelper", "-o", str(tmp_path / "b"), "--json"]) == 0
    assert _rendered(capsys)["entrypoint"] == "EpHelper"
    # The flag still works, and both together are fine when they agree.
    assert main(["chains", "render", str(chain), "--entrypoint", "EpHelper", "-o", str(tmp_path / "c"),
                 "--json"]) == 0
    assert _rendered(capsys)["entrypoint"] == "EpHelper"
    assert main(["chains", "render", str(chain), "EpFront", "--entrypoint", "EpFront", "-o",
                 str(tmp_path / "d"), "--json"]) == 0
    assert _rendered(capsys)["entrypoint"] == "EpFront"


@pytest.mark.parametrize("verb", [["render", "-o", "OUT"], ["build"], ["push", "--registry", "127.0.0.1:5000/x"],
                                  ["run", "--no-docker"]])
def test_two_different_entrypoints_are_a_usage_error(verb: list[str], chain: Path, tmp_path: Path, capsys) -> None:
    args = [str(tmp_path / "out") if a == "OUT" else a for a in verb]
    code = main(["chains", args[0], str(chain), "EpFront", "--entrypoint", "EpHelper", *args[1:]])
    assert code == 2
    err = capsys.readouterr().err
    assert "the entrypoint is given twice: ENTRYPOINT `EpFront` and --entrypoint `EpHelper`" in err
    assert not (tmp_path / "out").exists()  # nothing rendered, built or started


def test_help_shows_the_argument() -> None:
    from click.testing import CliRunner

    from packager.cli.main import cli

    for verb in ("render", "build", "push", "run"):
        result = CliRunner().invoke(cli, ["chains", verb, "--help"], prog_name="pack")
        assert f"pack chains {verb} [OPTIONS] SOURCE [ENTRYPOINT]" in result.output
