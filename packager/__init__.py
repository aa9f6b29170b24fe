"""pack: build fast-starting container images from Truss model directories.

Kept import-light on purpose: the in-image runtime (packager.runtime) must not drag in pydantic,
jinja2 or docker, so nothing here imports the build-time stages eagerly.
"""

__version__ = "0.1.0"
