"""The multi-instance runtime: lock, bus, write proxy, change events, failover.

``from pando_core.runtime import bootstrap`` (the start-up sequence lives in ``startup.py``;
imported lazily so that ``import pando_core`` stays light).
"""

from __future__ import annotations

_EXPORTS = ("bootstrap", "Runtime", "BootstrapResult", "BootstrapError")


def __getattr__(name: str):
    if name in _EXPORTS:
        from . import startup

        return getattr(startup, name)
    raise AttributeError(name)
