"""Where a primary's bus listens: port derivation, endpoint choice and validation.

Only the lock holder binds (see :mod:`.lock`); secondaries never derive endpoints, they read the
*actual* endpoints from ``primary.json``.  This module only computes and validates; binding (and
the last-moment fallback when a port is grabbed between check and bind) is done by
:class:`pando_core.runtime.bus.Bus`.

Transports, in order of preference for ``prefer="auto"``:

``ipc``
    Unix-domain sockets ``pub`` and ``rpc`` in a private 0700 directory
    ``<runtime>/<hash16>/`` where ``<runtime>`` is ``$XDG_RUNTIME_DIR/pando`` (when that is a
    private directory of ours) or ``/tmp/pando-<uid>``; ``<hash16>`` is the first 16 hex digits
    of SHA-256 of the resolved workdir.  File permissions are the access control.  Not used when
    libzmq lacks ipc (Windows wheels) or the socket path would exceed ``zmq.IPC_PATH_MAX_LEN``.
``tcp``
    ``tcp://127.0.0.1`` on ports derived from the workdir (FNV-1a, spec/ipc.md §2: PUB = base,
    RPC = base + 1), or two free ports when a derived port is already taken by another socket.
    Access control is CURVE or a token (see :mod:`.auth`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import zmq

from .private_dir import ensure_private_dir

__all__ = [
    "EndpointError",
    "Endpoints",
    "LOOPBACK",
    "choose_endpoints",
    "derived_ports",
    "fnv1a_32",
    "free_tcp_ports",
    "ipc_available",
    "ipc_socket_dir",
    "tcp_port_free",
]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
PORT_BASE = 40000
PORT_SPAN = 20000

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193

Transport = Literal["ipc", "tcp"]


class EndpointError(RuntimeError):
    """Endpoints cannot be chosen or are invalid (message says why)."""


def fnv1a_32(data: bytes | str) -> int:
    """FNV-1a 32-bit hash (offset basis 0x811C9DC5, prime 0x01000193) of *data* (str -> UTF-8)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    h = _FNV_OFFSET
    for byte in data:
        h ^= byte
        h = (h * _FNV_PRIME) & 0xFFFFFFFF
    return h


def derived_ports(path: str) -> tuple[int, int]:
    """``(pub, rpc)`` for *path* exactly as given: base = 40000 + fnv1a_32(path) % 20000,
    PUB = base, RPC = base + 1 (so PUB in [40000, 59999], RPC in [40001, 60000])."""
    base = PORT_BASE + fnv1a_32(path) % PORT_SPAN
    return base, base + 1


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The two endpoints of a bus.

    ``pub``/``rpc`` are ZeroMQ endpoint strings (``ipc:///...`` or ``tcp://127.0.0.1:<port>``);
    ``pub_port``/``rpc_port`` are set for tcp only.  Serialise with :meth:`to_dict` /
    :meth:`from_dict` (the form stored in ``primary.json``).
    """

    pub: str
    rpc: str
    transport: Transport
    pub_port: int | None = None
    rpc_port: int | None = None

    @classmethod
    def tcp(cls, pub_port: int, rpc_port: int, host: str = LOOPBACK) -> Endpoints:
        return cls(
            pub=f"tcp://{host}:{pub_port}",
            rpc=f"tcp://{host}:{rpc_port}",
            transport="tcp",
            pub_port=pub_port,
            rpc_port=rpc_port,
        )

    @classmethod
    def ipc(cls, directory: str) -> Endpoints:
        return cls(
            pub="ipc://" + os.path.join(directory, "pub"),
            rpc="ipc://" + os.path.join(directory, "rpc"),
            transport="ipc",
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"transport": self.transport, "pub": self.pub, "rpc": self.rpc}
        if self.transport == "tcp":
            d["pub_port"] = self.pub_port
            d["rpc_port"] = self.rpc_port
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Endpoints:
        """Parse and validate (raises EndpointError)."""
        if not isinstance(d, Mapping):
            raise EndpointError("endpoints must be a mapping")
        transport = d.get("transport")
        pub, rpc = d.get("pub"), d.get("rpc")
        if not isinstance(pub, str) or not isinstance(rpc, str):
            raise EndpointError("endpoints need string 'pub' and 'rpc'")
        if transport == "tcp":
            ep = cls(pub, rpc, "tcp", _port_from(pub), _port_from(rpc))
        elif transport == "ipc":
            ep = cls(pub, rpc, "ipc")
        else:
            raise EndpointError(f"unknown transport {transport!r}")
        ep.validate()
        return ep

    def validate(self) -> Endpoints:
        """Check scheme, loopback host, port ranges and ipc path lengths; returns self."""
        for name, ep in (("pub", self.pub), ("rpc", self.rpc)):
            if self.transport == "tcp":
                host, _, port = ep.removeprefix("tcp://").rpartition(":")
                if not ep.startswith("tcp://") or host != LOOPBACK:
                    raise EndpointError(f"{name} endpoint {ep!r} is not tcp://{LOOPBACK}:<port>")
                if port != "*" and not (port.isdigit() and 0 < int(port) < 65536):
                    raise EndpointError(f"{name} endpoint {ep!r} has an invalid port")
            elif self.transport == "ipc":
                path = ep.removeprefix("ipc://")
                if not ep.startswith("ipc://") or not os.path.isabs(path):
                    raise EndpointError(f"{name} endpoint {ep!r} is not ipc://<absolute path>")
                if len(os.fsencode(path)) > zmq.IPC_PATH_MAX_LEN:
                    raise EndpointError(f"{name} ipc path longer than {zmq.IPC_PATH_MAX_LEN} bytes")
            else:
                raise EndpointError(f"unknown transport {self.transport!r}")
        if self.pub == self.rpc:
            raise EndpointError("pub and rpc endpoints must differ")
        return self


def _port_from(endpoint: str) -> int | None:
    port = endpoint.rpartition(":")[2]
    return int(port) if port.isdigit() else None


# ---------------------------------------------------------------------------------------------
# tcp helpers


def tcp_port_free(port: int, host: str = LOOPBACK) -> bool:
    """True if nobody is bound to ``host:port`` (probe with SO_REUSEADDR, as libzmq binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if sys.platform != "win32":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_tcp_ports(n: int = 2, host: str = LOOPBACK) -> list[int]:
    """*n* distinct OS-assigned free ports (all held until chosen, then released).

    They can be taken by someone else before they are bound, so the bus still falls back to
    ``tcp://127.0.0.1:*`` on EADDRINUSE."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# ---------------------------------------------------------------------------------------------
# ipc helpers


def ipc_available() -> bool:
    """True if this libzmq build supports ``ipc://`` (not the case in pyzmq Windows wheels)."""
    return bool(zmq.has("ipc")) and hasattr(os, "getuid")


def _runtime_root() -> str:
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        try:
            st = os.stat(xdg)
            if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077:
                return os.path.join(xdg, "pando")
        except OSError:
            pass
    import tempfile

    tmp = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
    return os.path.join(tmp, f"pando-{os.getuid()}")


def workdir_key(workdir: str) -> str:
    """Stable 16-hex-digit key of a resolved workdir (names its ipc socket directory)."""
    return hashlib.sha256(os.fsencode(os.path.realpath(workdir))).hexdigest()[:16]


def ipc_socket_dir(workdir: str, runtime_dir: str | None = None) -> str:
    """Directory that would hold the ipc sockets of *workdir* (not created)."""
    return os.path.join(runtime_dir or _runtime_root(), workdir_key(workdir))


# ---------------------------------------------------------------------------------------------


def choose_endpoints(
    workdir: str,
    prefer: Literal["auto", "ipc", "tcp"] = "auto",
    *,
    runtime_dir: str | None = None,
) -> Endpoints:
    """Endpoints the primary of *workdir* should bind.

    ``prefer="auto"``: ipc when available and the socket path fits, else tcp.
    ``prefer="ipc"``: ipc or :class:`EndpointError` (never silently tcp).
    ``prefer="tcp"``: tcp on the derived ports of ``realpath(workdir)``, or two free ports if a
    derived port is bound by someone else.

    For ipc the private socket directory (``runtime_dir`` overrides its parent, which is created
    0700 too) is created here; a stale socket file left by a crashed primary is harmless (libzmq
    re-binds it; only the lock holder ever binds).  Secondaries connect to whatever path the
    primary recorded in ``primary.json``, so it must be visible to them: a process in a private
    ``/tmp`` namespace (systemd ``PrivateTmp``, some sandboxes) needs ``runtime_dir`` or tcp.
    """
    if prefer not in ("auto", "ipc", "tcp"):
        raise ValueError(f"prefer must be 'auto', 'ipc' or 'tcp', not {prefer!r}")
    workdir = os.path.realpath(workdir)
    if prefer in ("auto", "ipc"):
        reason = None
        if not ipc_available():
            reason = "this zmq build has no ipc transport"
        else:
            root = runtime_dir or _runtime_root()
            directory = ipc_socket_dir(workdir, root)
            longest = os.path.join(directory, "pub")
            if len(os.fsencode(longest)) > zmq.IPC_PATH_MAX_LEN:
                reason = f"ipc path {longest!r} exceeds {zmq.IPC_PATH_MAX_LEN} bytes"
            else:
                try:
                    ensure_private_dir(root, EndpointError)
                    ensure_private_dir(directory, EndpointError)
                    return Endpoints.ipc(directory).validate()
                except EndpointError as exc:
                    reason = str(exc)
        if prefer == "ipc":
            raise EndpointError(f"ipc transport not usable: {reason}")
        log.info("using tcp transport: %s", reason)
    pub, rpc = derived_ports(workdir)
    if tcp_port_free(pub) and tcp_port_free(rpc):
        return Endpoints.tcp(pub, rpc)
    log.info("derived ports %d/%d are taken; using free ports", pub, rpc)
    pub, rpc = free_tcp_ports(2)
    return Endpoints.tcp(pub, rpc)
