"""The Chains API: validation at class definition (file:line), entrypoints, instantiation rules,
run_local (injection, shared instances, context, strict mode) and the truss_chains shims."""

from __future__ import annotations

import asyncio
import re

import pytest

import chains
from chains.framework import raise_validation_errors
from chains.loading import load_chain

GOOD_CHAIN = """
    from typing import AsyncIterator

    import pydantic
    import truss_chains as chains
    from truss import truss_config


    class Point(pydantic.BaseModel):
        x: int
        y: int = 0


    class Doubler(chains.ChainletBase):
        remote_config = chains.RemoteConfig(
            assets=chains.Assets(
                cached=[truss_config.ModelRepo(repo_id="org/repo", revision="main", use_volume=True,
                                               volume_folder="w", ignore_patterns=["*.bin"])],
                secret_keys=["hf_access_token"]),
            compute=chains.Compute(gpu="L4"))

        def __init__(self, context: chains.DeploymentContext = chains.depends_context()) -> None:
            self.token = context.secrets["hf_access_token"]
            self.instances = getattr(Doubler, "instances", 0) + 1
            Doubler.instances = self.instances

        async def run_remote(self, p: Point, factor: int = 2) -> Point:
            return Point(x=p.x * factor, y=p.y * factor)


    class Words(chains.ChainletBase):
        async def run_remote(self, text: str) -> AsyncIterator[str]:
            for word in text.split(" "):
                yield word


    class Summer(chains.ChainletBase):
        def __init__(self, doubler: Doubler = chains.depends(Doubler)) -> None:
            self.doubler = doubler

        async def run_remote(self, values: list[int]) -> int:
            return sum(values) + (await self.doubler.run_remote(Point(x=1))).x


    @chains.mark_entrypoint("my-chain")
    class Entry(chains.ChainletBase):
        def __init__(self, doubler: Doubler = chains.depends(Doubler, retries=3),
                     words=chains.depends(Words), summer: Summer = chains.depends(Summer)) -> None:
            self.doubler, self.words, self.summer = doubler, words, summer

        async def run_remote(self, p: Point, text: str = "a b") -> tuple[Point, list[str], int]:
            doubled = await self.doubler.run_remote(p)
            streamed = [w async for w in self.words.run_remote(text)]
            return doubled, streamed, await self.summer.run_remote([1, 2])
"""


def _messages(exc: BaseException) -> list[str]:
    return str(exc).splitlines()[1:]


def test_truss_chain_file_loads_unchanged_and_runs_locally(chain_file):
    loaded = load_chain(chain_file(GOOD_CHAIN))
    assert loaded.entrypoint.__name__ == "Entry"
    assert loaded.chain_name == "my-chain"
    module = loaded.module
    with chains.run_local(secrets={"hf_access_token": "tok"}):
        entry = module.Entry()
        doubled, words, total = asyncio.run(entry.run_remote(module.Point(x=2, y=3)))
    assert (doubled.x, doubled.y, words, total) == (4, 6, ["a", "b"], 5)
    # One shared Doubler for Entry and Summer (Truss semantics), and its context has the secret.
    assert entry.doubler is entry.summer.doubler
    assert module.Doubler.instances == 1
    assert entry.doubler.token == "tok"


def test_run_local_explicit_kwargs_win_and_strict_mode_round_trips(chain_file):
    module = load_chain(chain_file(GOOD_CHAIN)).module

    class FakeDoubler:
        async def run_remote(self, p, factor=2):
            return module.Point(x=100, y=0)

    with chains.run_local(secrets={"hf_access_token": "t"}):
        entry = module.Entry(doubler=FakeDoubler())
        assert asyncio.run(entry.run_remote(module.Point(x=1)))[0].x == 100

    with chains.run_local(secrets={"hf_access_token": "t"}, strict=True):
        doubled, words, total = asyncio.run(module.Entry().run_remote(module.Point(x=2), text="é ü"))
    assert (doubled.x, words, total) == (4, ["é", "ü"], 5)


def test_strict_mode_reveals_what_only_fails_remotely(chain_file):
    module = load_chain(chain_file("""
        import chains

        class Leaky(chains.ChainletBase):
            async def run_remote(self, n: int) -> int:
                return "not an int"  # plain Python lets this through

        class Top(chains.ChainletBase):
            def __init__(self, leaky=chains.depends(Leaky)) -> None:
                self.leaky = leaky

            async def run_remote(self) -> int:
                return await self.leaky.run_remote(n=1)
    """), entrypoint="Top").module
    with chains.run_local():
        assert asyncio.run(module.Top().run_remote()) == "not an int"
    with chains.run_local(strict=True), pytest.raises(Exception, match="int"):
        asyncio.run(module.Top().run_remote())


def test_instantiation_outside_run_local_and_positional_args(chain_file):
    path = chain_file(GOOD_CHAIN)
    module = load_chain(path).module
    with pytest.raises(chains.ChainsRuntimeError, match=r"test_api\.py:\d+: `Words` was instantiated "
                                                        r"outside `chains.run_local\(\)`"):
        module.Words()
    with chains.run_local(), pytest.raises(chains.ChainsRuntimeError, match="Only kwargs are allowed."):
        module.Words(1)


def test_dependency_marker_cannot_be_used(chain_file):
    marker = chains.depends(chains.ChainletBase)
    with pytest.raises(chains.ChainsRuntimeError, match="placeholder"):
        _ = marker.run_remote


BAD_CHAIN = """
    from typing import List, Optional
    import chains


    class A(chains.ChainletBase):
        async def run_remote(self, x: Optional[int], y: List[int], z) -> dict[str, list[int]]:
            return {}


    class B(chains.ChainletBase):
        def __init__(self, a=chains.depends(A), other: int = 3):
            pass

        run_remote = 3


    class C(chains.ChainletBase):
        pass


    class D(chains.ChainletBase):
        def __init__(self, context=chains.depends_context(), a=chains.depends(A)):
            pass

        def run_remote(self, s: str) -> str:
            yield s


    class E(chains.ChainletBase):
        def __init__(self, a1=chains.depends(A), a2=chains.depends(A)):
            pass

        async def run_remote(self, s: str) -> set[int]:
            return set()


    class F(chains.ChainletBase):
        remote_config = chains.RemoteConfig(name="bad name!")

        def __init__(self, b: str = chains.depends(A)):
            pass

        async def run_remote(self, s: str):
            return s
"""


def test_validation_errors_are_collected_with_file_and_line(chain_file):
    path = chain_file(BAD_CHAIN)
    with pytest.raises(chains.ChainsUsageError) as info:
        load_chain(path)
    text = str(info.value)
    assert text.startswith("The user defined code does not comply with the required spec, please fix below:")
    lines = _messages(info.value)
    source = path.read_text().splitlines()

    def line_of(snippet: str) -> int:
        return next(i + 1 for i, line in enumerate(source) if snippet in line)

    a_run = line_of("async def run_remote(self, x: Optional")
    expected = [
        (a_run, "A.run_remote", "IO_TYPE_ERROR", "`x`: unsupported type `Optional[int]`"),
        (a_run, "A.run_remote", "IO_TYPE_ERROR", "`List[int]`"),
        (a_run, "A.run_remote", "IO_TYPE_ERROR", "`z` has no type annotation"),
        (a_run, "A.run_remote", "IO_TYPE_ERROR", "nested containers"),
        (line_of("class B("), "B", "TYPE_ERROR", "`run_remote` must be a method"),
        (line_of("def __init__(self, a=chains.depends(A), other"), "B.__init__", "TYPE_ERROR",
         "`other` must default"),
        (line_of("class C("), "C", "MISSING_API_ERROR", "CHAINLETs must have a `run_remote` method."),
        (line_of("def __init__(self, context=chains"), "D.__init__", "TYPE_ERROR", "`context` must be the last"),
        (line_of("def run_remote(self, s: str) -> str:"), "D.run_remote", "IO_TYPE_ERROR", "must be `AsyncIterator"),
        (line_of("def __init__(self, a1="), "E.__init__", "TYPE_ERROR", "used twice"),
        (line_of("-> set[int]"), "E.run_remote", "IO_TYPE_ERROR", "`set`"),
        (line_of("class F("), "F", "INVALID_CONFIG_ERROR", "'bad name!' must match"),
        (line_of("def __init__(self, b: str"), "F.__init__", "TYPE_ERROR", "annotated `str`"),
        (line_of("async def run_remote(self, s: str):"), "F.run_remote", "IO_TYPE_ERROR",
         "return type is not annotated"),
    ]
    for line, where, kind, fragment in expected:
        prefix = f"{path}:{line} ({where}) [kind: {kind}]: "
        assert any(m.startswith(prefix) and fragment in m for m in lines), (prefix, fragment, text)
    assert len(lines) == len(expected), text


def test_errors_are_raised_at_run_local_entry(chain_file, tmp_path):
    import importlib.util
    import sys

    path = chain_file("""
        import chains

        class NoTypes(chains.ChainletBase):
            async def run_remote(self, x):
                return x
    """)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)  # a plain import only collects
    with pytest.raises(chains.ChainsUsageError, match=re.escape(f"{path}:5 (NoTypes.run_remote)")):
        with chains.run_local():
            pass
    raise_validation_errors()  # nothing left pending


def test_entrypoint_rules(chain_file):
    two = chain_file("""
        import chains

        @chains.mark_entrypoint
        class One(chains.ChainletBase):
            async def run_remote(self) -> None:
                return None

        @chains.mark_entrypoint
        class Two(chains.ChainletBase):
            async def run_remote(self) -> None:
                return None
    """)
    with pytest.raises(ValueError, match="several chainlets are marked"):
        load_chain(two)
    assert load_chain(two, entrypoint="Two").entrypoint.__name__ == "Two"
    only = chain_file("""
        import chains

        class Only(chains.ChainletBase):
            remote_config = chains.RemoteConfig(name="only-one")

            async def run_remote(self) -> None:
                return None
    """)
    loaded = load_chain(only)
    assert (loaded.entrypoint.__name__, loaded.chain_name) == ("Only", "only-one")


def test_source_names(chain_file, tmp_path):
    bad = tmp_path / "my-chain.py"
    bad.write_text("import chains\n")
    with pytest.raises(ValueError, match="not a valid module name"):
        load_chain(bad)
    clash = tmp_path / "json.py"
    clash.write_text("import chains\n")
    with pytest.raises(ImportError, match="Try renaming your source file."):
        load_chain(clash)


def test_unsupported_bases_and_config_types():
    with pytest.raises(chains.ChainsUsageError, match="string"):
        chains.DockerImage(base_image="python:3.11")
    with pytest.raises(chains.ChainsUsageError, match="unsupported gpu"):
        chains.Compute(gpu="K80")
    assert chains.Compute(cpu_count=4, predict_concurrency="cpu_count").get_spec().predict_concurrency == 4
    assert chains.Assets(secret_keys=["a"]).get_spec().secrets == {"a": "***"}

    class Engine(chains.EngineBuilderLLMChainlet):
        pass

    with pytest.raises(chains.ChainsUsageError, match="EngineBuilderLLMChainlet is not supported by pack"):
        raise_validation_errors()


def test_make_abs_path_here_and_context(tmp_path):
    here = chains.make_abs_path_here("data/x.txt")
    assert here._abs_file_path.endswith("tests/chains/data/x.txt")
    with pytest.raises(chains.MissingDependencyError):
        _ = here.abs_path
    context = chains.DeploymentContext(secrets={"baseten_chain_api_key": "***"})
    with pytest.raises(chains.MissingDependencyError):
        context.get_baseten_api_key()
    with pytest.raises(chains.MissingDependencyError):
        context.get_service_descriptor("Nope")
    with pytest.raises(ValueError, match="At least one of 'predict_url' or 'internal_url'"):
        chains.DeployedServiceDescriptor(name="a", display_name="a", options=chains.RPCOptions())
