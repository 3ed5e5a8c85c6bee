"""The multi-instance runtime: lock, bus, write proxy, change events, failover.

``from pando_core.runtime import bootstrap`` (imported lazily so that ``import pando_core`` stays
light). Where things are, by file name:

- ``bootstrap.py``: start-up -- `bootstrap()` and the long-lived `Runtime` (become primary or
  secondary, the core bus methods, cleanup);
- ``failover.py``: promotion when the lock is won, following a new primary, fencing;
- ``subscriptions.py``: what a secondary takes from the bus (change events, resync);
- ``write_proxy.py``: where a secondary's writes go (to the primary, resent after failover);
- ``write_coordinator.py``: how the primary applies them (group commit, exactly once);
- ``bus.py`` / ``client.py`` / ``protocol.py``: the IPC bus, its client, its wire format;
- ``lock.py``, ``instances.py``, ``endpoints.py``, ``auth.py``: the lease, the instance list,
  the sockets and their credentials.
"""

from __future__ import annotations

import importlib
import sys
import types

_EXPORTS = ("bootstrap", "Runtime", "BootstrapResult", "BootstrapError")


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.bootstrap")  # the module, not the attribute

        return getattr(module, name)
    raise AttributeError(name)


class _RuntimePackage(types.ModuleType):
    """``pando_core.runtime.bootstrap`` stays the start-up function once its module, of the same
    name, is imported: the import system sets a package attribute for each submodule it loads."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "bootstrap" and isinstance(value, types.ModuleType):
            value = value.bootstrap
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _RuntimePackage
