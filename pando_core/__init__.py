"""Pando core: bootstrap, IPC bus, failover, database, agent; plugins add the rest."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # hookimpl without importing pluggy for `pando --version`
    if name in ("hookimpl", "hookspec"):
        from . import hookspecs

        return getattr(hookspecs, name)
    raise AttributeError(name)
