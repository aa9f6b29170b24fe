"""Which image to build FROM, which interpreter in it runs the server, and as which user."""

from __future__ import annotations

import re
import shlex

from packager.config import TrussConfig
from packager.errors import PlanError

from .model import Accelerator, BaseImage, BaseImageFacts, BuildOptions

# Truss's default base (baseten/truss-server-base) is a registry image; pack's default is the
# official slim Debian Python image of the configured version, overridable per build.
DEFAULT_BASE = "python:{version}-slim-bookworm"
# For an accelerator: the base Truss 0.18.30 builds GPU models FROM. NVIDIA's CUDA runtime on
# Ubuntu (Debian-like, so the fail-fast check holds) with the configured Python as python3 on
# PATH, published for every python_version Truss accepts; GPU wheels (torch cu12x, ...) find the
# same CUDA libraries as under Truss. The official nvidia/cuda runtime images carry no Python.
DEFAULT_CUDA_BASE = "baseten/truss-server-base:{version}-gpu-v0.13.0"
_ROOT_USERS = ("", "root", "0")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*(:[A-Za-z0-9_][A-Za-z0-9_.@-]*)?$")


def dotted(python_version: str) -> str:
    return f"{python_version[2]}.{python_version[3:]}"


def base_image_ref(config: TrussConfig, options: BuildOptions) -> str:
    """The image the build goes FROM (what the builder inspects before planning)."""
    return _choose(config, options)[0]


def _choose(config: TrussConfig, options: BuildOptions) -> tuple[str, str, bool, bool]:
    """(image, interpreter, is pack's default, is the CUDA default)."""
    version = dotted(config.python_version)
    configured = config.base_image
    if options.base_image:
        # The configured interpreter path belongs to the configured image; an override image is
        # trusted to have python3 on its PATH.
        return options.base_image, "python3", False, False
    if configured and configured.image:
        return configured.image, configured.python_executable_path or "python3", False, False
    if config.resources.use_gpu:
        return DEFAULT_CUDA_BASE.format(version=version), "python3", True, True
    return DEFAULT_BASE.format(version=version), "python3", True, False


def server_user(user: str | None) -> str | None:
    """Docker's USER text -> the user to restore for the server; None when that is root."""
    if user is None or user.strip().partition(":")[0] in _ROOT_USERS:
        return None
    if not _USER.match(user.strip()):
        raise PlanError(f"the base image's USER `{user}` is not a user[:group] name or id pack can write back",
                        hint="end the base image with e.g. `USER appuser` or `USER 1000:1000`")
    return user.strip()


def plan_base_image(config: TrussConfig, options: BuildOptions, facts: BaseImageFacts | None = None) -> BaseImage:
    image, python, is_default, cuda = _choose(config, options)
    known = facts is not None and facts.image == image
    user = server_user(facts.user) if known and facts is not None else None
    return BaseImage(image, python, is_default, dotted(config.python_version), user=user, cuda=cuda,
                     check_command=base_check_command(image, python))


# The Pythons pack's runtime runs on (it is written for 3.9 and checked against 3.14).
SUPPORTED_PYTHON = ((3, 9), (3, 14))


def base_check_command(image: str, python: str) -> str:
    """A shell command that fails, saying why, on a base image that is not Debian-like or whose
    Python is outside SUPPORTED_PYTHON (the user learns it in seconds, not after the installs)."""
    (low_major, low_minor), (high_major, high_minor) = SUPPORTED_PYTHON
    span = f"{low_major}.{low_minor}-{high_major}.{high_minor}"
    refusal = shlex.quote(f"pack: base image {image} is not Debian-based")
    debian = f"(grep -qE '^(ID|ID_LIKE)=.*debian' /etc/os-release || {{ echo {refusal} >&2; exit 1; }})"
    version = (f"import sys; sys.exit(0 if {SUPPORTED_PYTHON[0]} <= sys.version_info[:2] <= {SUPPORTED_PYTHON[1]} "
               f"else \"pack: base image Python %d.%d is outside {span}\" % sys.version_info[:2])")
    return f"{debian} && {python} -c {shlex.quote(version)}"


def base_image_notes(config: TrussConfig, base: BaseImage, facts: BaseImageFacts | None) -> list[str]:
    notes = []
    if base.cuda:
        notes.append(f"resources.accelerator {config.resources.accelerator.model_dump()}: building FROM "
                     f"{base.image}, pack's default CUDA runtime base (--base-image or base_image overrides it)")
    if base.user is not None:
        notes.append(f"base image {base.image} runs as `{base.user}`: pack's steps run as root and the "
                     f"server runs as `{base.user}` again")
    elif not base.is_default and (facts is None or facts.image != base.image):
        notes.append(f"the USER of base image {base.image} is read from the engine by `pack build`; this "
                     "plan assumes root")
    elif not base.is_default and facts is not None and facts.user is None:
        notes.append(f"could not read the USER of base image {base.image} ({facts.detail}): pack's steps "
                     "and the server run as root")
    return notes


def plan_accelerator(config: TrussConfig) -> Accelerator | None:
    """resources.accelerator as what `pack run` requests; the same fact picks the CUDA base."""
    spec = config.resources.accelerator
    if spec.accelerator is None or spec.count <= 0:
        return None
    return Accelerator(spec.accelerator.value, spec.count)
