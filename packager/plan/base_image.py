"""Which image to build FROM and which interpreter in it runs the server."""

from __future__ import annotations

from packager.config import TrussConfig

from .model import BaseImage, BuildOptions

# Truss's default base (baseten/truss-server-base) is a registry image; pack's default is the
# official slim Debian Python image of the configured version, overridable per build.
DEFAULT_BASE = "python:{version}-slim-bookworm"


def dotted(python_version: str) -> str:
    return f"{python_version[2]}.{python_version[3:]}"


def plan_base_image(config: TrussConfig, options: BuildOptions) -> BaseImage:
    version = dotted(config.python_version)
    configured = config.base_image
    if options.base_image:
        # The configured interpreter path belongs to the configured image; an override image is
        # trusted to have python3 on its PATH.
        return BaseImage(options.base_image, "python3", False, version)
    if configured and configured.image:
        return BaseImage(configured.image, configured.python_executable_path or "python3", False, version)
    return BaseImage(DEFAULT_BASE.format(version=version), "python3", True, version)
