"""The `secrets` mapping Model.__init__ receives.

Lookup only, by the names declared in config `secrets`, resolved at each access in the order of
packager.runtime.secret_lookup: the file <secrets dir>/<name> first (content verbatim, trailing
newline kept, as in Truss), then the environment variable TRUSS_SECRET_<name>. Unlike Truss there
is no fallback to a value written in config.yaml (the image's config carries null for every
secret), and the Chains placeholder counts as missing.

Deviation, documented: SecretNotFound subclasses KeyError, so `secrets.get(name)` returns None and
`name in secrets` is False for a declared but unset secret instead of raising.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from packager import constants
from packager.runtime import secret_lookup


class SecretNotFound(KeyError):
    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class Secrets(Mapping[str, str]):
    def __init__(self, names: tuple[str, ...] | list[str], secrets_dir: str):
        self._names = tuple(names)
        self._dir = secrets_dir

    def __getitem__(self, name: str) -> str:
        if name not in self._names:
            raise SecretNotFound(
                f"Secret '{name}' is not declared in config.yaml. Declare it under `secrets:` "
                f"(`{name}: null`) and define its value in your secret store.")
        value = resolve_secret(name, self._dir)
        if value is None:
            raise SecretNotFound(
                f"Secret '{name}' is declared but has no value: expected the file "
                f"{os.path.join(self._dir, name)} or the environment variable "
                f"{constants.TRUSS_SECRET_PREFIX}{name}.")
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._names and resolve_secret(name, self._dir) is not None

    def __iter__(self) -> Iterator[str]:
        raise NotImplementedError("Secrets are meant for lookup and can't be iterated on")

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:  # never print values
        return f"Secrets(declared={list(self._names)!r})"


def resolve_secret(name: str, secrets_dir: str) -> str | None:
    """The secret's value as written, or None when it is unset."""
    found = secret_lookup.lookup(name, secrets_dir, os.environ)
    return None if found is None else found.value
