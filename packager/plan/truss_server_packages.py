"""Truss's server packages: what a Truss model image has whether or not the truss lists it.

Truss installs its server's own requirements into every Model-class image, minus the packages
the user also names (the user's pin wins), with constraints.txt bounding every install. Published
model.py files import those packages without listing them. pack's server needs none of them, so
it installs only the ones the truss's own code imports (code_imports.scan) and the truss does not
require, at Truss's bounds, in a layer before the user's requirements (which then win).

Decisions:
- Only Truss's packages are ever added: an import of anything else is the truss's business.
- An import inside `try: ... except ImportError` counts like any other. Under Truss the package
  is always there, so the guarded branch that uses it is the one that runs; leaving it out would
  switch the model silently to its fallback. The report marks such packages `optional`.
- An import only under `if TYPE_CHECKING:` never runs and counts for nothing.
- A dependency Truss's image gets through one of its packages (starlette and pydantic through
  fastapi, urllib3 through requests) is provided as Truss gets it: by that package, at its bounds.
- docker_server trusses get nothing (Truss installs only the user's requirements there).
- The user's requirements are installed as written, not bounded by Truss's constraints: Truss
  bounds them because its own server imports these packages; pack's server does not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packager.runtime.pip_names import pip_name, requirement_name

from .code_imports import ImportSite

TRUSS_VERSION = "0.18.30"
# pack's own server layer (Model-class images): what it installs is never added again.
PACK_SERVER_REQUIREMENTS = Path(__file__).resolve().parents[1] / "runtime" / "server-requirements.txt"
# Copied from truss 0.18.30: truss/templates/server/requirements.txt (what Truss installs; its
# `-i https://pypi.org/simple` line left out: pack's builds use the configured index).
REQUIREMENTS = (
    "aiocontextvars==0.2.2",
    "aiofiles>=24.1.0",
    "aiohttp>=3.10.11",
    "cython==3.0.5",
    "fastapi>=0.114,<0.125.0",
    "joblib>=1.2.0",
    "loguru>=0.7.2",
    "msgpack-numpy==0.4.8",
    "msgpack==1.1.0",
    "numpy>=1.23.5,<2.0",
    "opentelemetry-api>=1.25.0",
    "opentelemetry-exporter-otlp>=1.25.0",
    "opentelemetry-sdk>=1.25.0",
    "prometheus-client>=0.21.1",
    "psutil>=5.9.4",
    "python-json-logger>=2.0.2",
    "pyyaml>=6.0.0",
    "requests>=2.31.0",
    "truss-transfer>=0.0.40,<0.0.45",
    "uvicorn>=0.24.0",
    "uvloop>=0.19.0",
    "websockets>=10.0",
)
# Copied from truss 0.18.30: truss/templates/server/constraints.txt (bounds on every install).
CONSTRAINTS = (
    "aiocontextvars==0.2.2",
    "aiofiles>=24.1.0",
    "aiohttp>=3.10.11",
    "cython==3.0.5",
    "fastapi>=0.114,<0.136.0",
    "joblib>=1.2.0",
    "loguru>=0.7.2",
    "msgpack-numpy==0.4.8",
    "msgpack==1.1.0",
    "numpy>=1.23.5,<3.0",
    "opentelemetry-api>=1.25.0",
    "opentelemetry-exporter-otlp>=1.25.0",
    "opentelemetry-sdk>=1.25.0",
    "prometheus-client>=0.21.1",
    "psutil>=5.9.4",
    "python-json-logger>=2.0.2",
    "pyyaml>=6.0.0",
    "requests>=2.31.0",
    "truss-transfer>=0.0.42,<0.0.47",
    "uvicorn>=0.24.0",
    "uvloop>=0.19.0",
    "websockets>=10.0",
)
# Distributions Truss's image has only as dependencies of one of REQUIREMENTS -> that package.
# The well-established, direct ones a model plausibly imports; deeper ones are left to chance.
THROUGH = {
    "starlette": "fastapi", "pydantic": "fastapi", "pydantic-core": "fastapi",
    "annotated-types": "fastapi", "anyio": "fastapi", "typing-extensions": "fastapi",
    "urllib3": "requests", "idna": "requests", "certifi": "requests", "charset-normalizer": "requests",
    "multidict": "aiohttp", "yarl": "aiohttp", "aiosignal": "aiohttp", "frozenlist": "aiohttp",
    "attrs": "aiohttp", "aiohappyeyeballs": "aiohttp", "propcache": "aiohttp",
    "h11": "uvicorn", "click": "uvicorn",
    "opentelemetry-semantic-conventions": "opentelemetry-sdk",
    "opentelemetry-proto": "opentelemetry-exporter-otlp", "protobuf": "opentelemetry-exporter-otlp",
    "grpcio": "opentelemetry-exporter-otlp",
}


def _table(lines: Iterable[str]) -> dict[str, str]:
    return {name: line for line in lines if (name := requirement_name(line)) is not None}


REQUIREMENT_LINES = _table(REQUIREMENTS)
CONSTRAINT_LINES = _table(CONSTRAINTS)


@dataclass(frozen=True)
class ServerPackage:
    """One of Truss's server packages the truss's code imports and does not require."""

    distribution: str  # canonical name, as in Truss's requirements.txt
    requirement: str  # Truss's requirements.txt line (its bounds)
    constraint: str | None  # Truss's constraints.txt line for it
    imports: tuple[ImportSite, ...]  # where the code imports it (or what it provides)

    @property
    def optional(self) -> bool:
        """Every import of it is guarded by `except ImportError` (the code runs without it)."""
        return all(site.guarded for site in self.imports)

    def as_dict(self) -> dict[str, object]:
        return {"distribution": self.distribution, "requirement": self.requirement,
                "constraint": self.constraint, "optional": self.optional,
                "imports": [site.as_dict() for site in self.imports]}


@dataclass(frozen=True)
class ServerPackages:
    """What pack adds to a Model-class image so the truss finds the packages Truss would give it."""

    packages: tuple[ServerPackage, ...] = ()
    unscanned: tuple[str, ...] = ()  # "file: reason" for code the scan could not parse
    truss_version: str = TRUSS_VERSION  # whose server image the list comes from

    @property
    def requirement_lines(self) -> tuple[str, ...]:
        return tuple(p.requirement for p in self.packages)

    @property
    def constraint_lines(self) -> tuple[str, ...]:
        return tuple(p.constraint for p in self.packages if p.constraint)

    def notes(self) -> list[str]:
        notes = []
        if self.packages:
            notes.append(f"adds Truss's server packages the code imports and the truss does not require "
                         f"(Truss {self.truss_version}'s image has them): " + ", ".join(self.requirement_lines))
        notes += [f"not scanned for imports: {item}" for item in self.unscanned]
        return notes

    def as_dict(self) -> dict[str, object]:
        return {"truss_version": self.truss_version, "packages": [p.as_dict() for p in self.packages],
                "unscanned": list(self.unscanned)}


def pack_server_distributions() -> frozenset[str]:
    """What pack's own server layer installs (msgpack): never added a second time."""
    lines = PACK_SERVER_REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    return frozenset(n for line in lines if (n := requirement_name(line)) is not None)


def truss_distribution(module: str) -> str | None:
    """The package of Truss's list that puts `module` into Truss's image, or None."""
    name = pip_name(module)
    name = THROUGH.get(name, name)
    return name if name in REQUIREMENT_LINES else None


def plan_server_packages(sites: Iterable[ImportSite], required: frozenset[str], *,
                         provided: frozenset[str] = frozenset()) -> tuple[ServerPackage, ...]:
    """Truss's packages that `sites` import, less those the truss requires (`required`,
    canonical names; a requirement of the imported distribution itself or of the Truss package
    that brings it both count) and those pack's own server layer installs (`provided`)."""
    wanted: dict[str, list[ImportSite]] = {}
    for site in sites:
        for module in site.candidates():
            distribution = truss_distribution(module)
            if distribution is None or distribution in provided:
                continue
            if distribution in required or pip_name(module) in required:
                continue
            if site not in wanted.setdefault(distribution, []):
                wanted[distribution].append(site)
    return tuple(
        ServerPackage(name, REQUIREMENT_LINES[name], CONSTRAINT_LINES.get(name), tuple(wanted[name]))
        for name in sorted(wanted)
    )
