"""The one Jinja2 environment pack renders with (Dockerfiles, generated files, `pack init`).

StrictUndefined: a template that names a variable the caller did not pass fails loudly instead
of rendering an empty string (Truss shipped `COPY --chown=` with an empty owner that way).
"""

from __future__ import annotations

import json
import posixpath
import shlex
from functools import lru_cache
from pathlib import Path

import jinja2


def templates_dir() -> Path:
    """templates/ of a checkout, or the copy the wheel carries as packager/_templates."""
    packaged = Path(__file__).parent / "_templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    # Values reach Dockerfiles through these filters only: shell words are quoted, exec forms
    # are JSON arrays, so a path or package name can never break a RUN line.
    env.filters["sh"] = lambda value: shlex.quote(str(value))
    env.filters["json"] = lambda value: json.dumps(value)
    # An ENV value: JSON string syntax, which a Dockerfile's double quotes read back the same
    # for printable text (the plan keeps newlines and control characters out), plus `$`
    # escaped, which ENV would otherwise expand. Non-ASCII stays as it is: `\u00e9` would not.
    env.filters["env"] = lambda value: json.dumps(str(value), ensure_ascii=False).replace("$", "\\$")
    env.filters["dirname"] = posixpath.dirname
    return env


def render(name: str, **context: object) -> str:
    return environment().get_template(name).render(**context)
