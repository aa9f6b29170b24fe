"""Where the runtime finds things: the fixed image layout, relocatable by environment variables.

Inside an image every default applies (/app, /packages, /secrets, ...). Tests and local runs set
PACK_APP_DIR and friends so the same code runs against a temporary directory; nothing else in the
runtime reads these paths from the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from packager import constants

from .manifest import IMAGE_MANIFEST_PATH


@dataclass(frozen=True)
class RuntimePaths:
    app_dir: str
    config_yaml: str
    config_json: str
    manifest: str
    model_cache: str
    data_dir: str
    packages_dir: str
    secrets_dir: str
    state_dir: str
    dynamic_config_dir: str

    @property
    def dest_root(self) -> str | None:
        """What the transfer engine gets as dest_root.

        None inside the image, where manifest destinations (/app/model_cache/...) are used as
        written; a relocated app dir maps them under its own model_cache.
        """
        return None if self.model_cache == constants.MODEL_CACHE_DIR else self.model_cache

    @property
    def prefetch_state(self) -> str:
        return os.path.join(self.state_dir, "pack-prefetch-state.json")

    @property
    def prefetch_lock(self) -> str:
        return os.path.join(self.state_dir, "pack-prefetch.lock")

    @property
    def markers_dir(self) -> str:
        """The prefetch's verified markers: outside the destinations, which hold exactly the
        source's files (a model may list its mount_location)."""
        return os.path.join(self.state_dir, "pack-markers")

    @property
    def transfer_stats(self) -> str:
        return os.path.join(self.state_dir, "pack-transfer-stats.json")

    @property
    def environment_file(self) -> str:
        return os.path.join(self.dynamic_config_dir, "environment")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RuntimePaths:
        env = os.environ if env is None else env
        app = os.path.abspath(env.get(constants.PACK_APP_DIR) or constants.APP_DIR)
        relocated = app != constants.APP_DIR

        def under_app(image_path: str) -> str:
            # /app/x -> <app>/x when relocated; image paths stay as they are otherwise.
            if not relocated:
                return image_path
            return os.path.join(app, os.path.relpath(image_path, constants.APP_DIR))

        return cls(
            app_dir=app,
            config_yaml=os.path.join(app, "config.yaml"),
            config_json=under_app(constants.IMAGE_CONFIG_JSON),
            manifest=env.get(constants.PACK_MANIFEST) or under_app(IMAGE_MANIFEST_PATH),
            model_cache=under_app(constants.MODEL_CACHE_DIR),
            data_dir=os.path.join(app, "data"),
            packages_dir=env.get(constants.PACK_PACKAGES_DIR) or constants.PACKAGES_DIR,
            secrets_dir=env.get(constants.PACK_SECRETS_DIR) or constants.SECRETS_DIR,
            state_dir=env.get(constants.PACK_STATE_DIR) or constants.RUNTIME_STATE_DIR,
            dynamic_config_dir=(env.get(constants.PACK_DYNAMIC_CONFIG_DIR)
                                or constants.DYNAMIC_CONFIG_DIR),
        )


def env_float(name: str, default: float, env: Mapping[str, str] | None = None) -> float:
    """A numeric tunable from the environment; a malformed value falls back to the default."""
    raw = (os.environ if env is None else env).get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        return default
