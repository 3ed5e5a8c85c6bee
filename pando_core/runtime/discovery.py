"""Finding the primary when ``primary.json`` cannot be trusted (missing, partial or corrupt).

The endpoints a primary binds are derived from its working directory (the ipc socket path, or
the tcp ports of :func:`~.endpoints.choose_endpoints`), so a new instance can ask there instead
of waiting for the record: whoever answers a ping on them with our working directory is the
lock holder (only the holder binds). Its answer (instance id, epoch, pid) makes the record the
newcomer goes by; the primary itself rewrites the damaged file within a lease check.
A primary that had to fall back to free tcp ports cannot be found this way: then the newcomer
waits for the rewritten record.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .auth import client_auth, curve_available
from .client import Client
from .endpoints import choose_endpoints
from .lock import PrimaryRecord
from .protocol import RpcError, RpcTimeout

log = logging.getLogger("pando.runtime")

__all__ = ["primary_at_derived_endpoints"]


def primary_at_derived_endpoints(
    workdir: Path, pando_dir: Path, prefer: str, instance_id: str, *, timeout: float = 0.5
) -> PrimaryRecord | None:
    """The record of the primary answering on *workdir*'s derived endpoints, or None."""
    try:
        endpoints = choose_endpoints(str(workdir), prefer)  # type: ignore[arg-type]
        mechanism = "none" if endpoints.transport == "ipc" else ("curve" if curve_available() else "token")
        auth_info = {"mechanism": mechanism}
        client = Client(endpoints.to_dict(), instance_id, client_auth(pando_dir, auth_info))
    except Exception as exc:  # noqa: BLE001 - no way to ask: wait for the record instead
        log.debug("cannot probe the derived endpoints: %s", exc)
        return None
    try:
        info = client.ping(timeout=timeout)
    except (RpcError, RpcTimeout):
        return None
    finally:
        client.close(timeout=0.5)
    metadata = info.get("metadata") if isinstance(info.get("metadata"), dict) else {}
    if metadata.get("workdir") != str(workdir):
        return None
    try:
        return PrimaryRecord(
            instance_id=str(info["instance_id"]),
            pid=int(info["pid"]),
            epoch=int(info["epoch"]),
            endpoints=endpoints.to_dict(),
            started_at=0,
            auth=auth_info,
            workdir=str(workdir),
        )
    except (KeyError, TypeError, ValueError):
        return None
