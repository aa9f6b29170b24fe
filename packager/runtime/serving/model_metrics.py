"""The model's own prometheus_client metrics at /metrics, as Truss's server shows them.

Truss mounts prometheus_client's app on its default REGISTRY, after unregistering the process,
platform and GC collectors and turning the `_created` series off. pack shows the same families
without changing the model's registry: the default collectors' families and `_created` samples
are left out of the text instead.

prometheus_client is never imported here: a model that registered metrics has imported it, so
sys.modules tells (a model that did not has nothing to show).

A family whose name the runtime's own text already uses (pack_*, model_cache_*) is left out, with
one warning per name: two families of one name make the whole scrape invalid.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any

log = logging.getLogger("pack.metrics")
_NAME = re.compile(r"^(?:# (?:HELP|TYPE) )?([a-zA-Z_:][a-zA-Z0-9_:]*)", re.MULTILINE)
_DEFAULT_COLLECTORS = (("process_collector", "PROCESS_COLLECTOR"), ("platform_collector", "PLATFORM_COLLECTOR"),
                       ("gc_collector", "GC_COLLECTOR"))
_default_names: frozenset[str] | None = None
_warned: set[str] = set()


def names_in(text: str) -> frozenset[str]:
    """The metric and sample names a Prometheus text uses."""
    return frozenset(_NAME.findall(text))


def exposition(taken: frozenset[str]) -> str:
    """The default registry's text (without the names in `taken`), or "" without prometheus_client."""
    client = sys.modules.get("prometheus_client")
    if client is None:
        return ""
    try:
        return str(client.generate_latest(_Shown(client, taken)).decode("utf-8"))
    except Exception:  # noqa: BLE001 - a broken model collector must not take /metrics down
        log.exception("the model's prometheus_client metrics could not be collected")
        return ""


class _Shown:
    """The default registry's families as Truss's /metrics shows them, minus `taken` names."""

    def __init__(self, client: Any, taken: frozenset[str]):
        self._client = client
        self._taken = taken

    def collect(self) -> Iterator[Any]:
        hidden = _defaults(self._client)
        for family in self._client.REGISTRY.collect():
            if family.name in hidden:
                continue
            samples = [s for s in family.samples if s.name != family.name + "_created"]
            clashes = sorted({family.name, *(s.name for s in samples)} & self._taken)
            if clashes:
                if family.name not in _warned:
                    _warned.add(family.name)
                    log.warning("the model's metric %s is not shown at /metrics: the server's own "
                                "metrics use the name %s", family.name, clashes[0])
                continue
            shown = self._client.Metric(family.name, family.documentation, family.type, family.unit)
            shown.samples = samples
            yield shown


def _defaults(client: Any) -> frozenset[str]:
    """The families of prometheus_client's default collectors (Truss unregisters them)."""
    global _default_names
    if _default_names is None:
        names: set[str] = set()
        for module_name, attribute in _DEFAULT_COLLECTORS:
            module = getattr(client, module_name, None)
            collector = getattr(module, attribute, None)
            if collector is not None:
                names.update(family.name for family in _families(collector))
        _default_names = frozenset(names)
    return _default_names


def _families(collector: Any) -> Iterable[Any]:
    try:
        return list(collector.collect())
    except Exception:  # noqa: BLE001 - e.g. no /proc: that collector shows nothing anyway
        return []
