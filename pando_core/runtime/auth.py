"""Who may talk to a primary's bus.

Mechanisms (chosen by the primary, advertised in ``primary.json["auth"]``):

``none``
    Used for the ``ipc`` transport: the sockets live in a private 0700 directory, so file
    permissions already restrict access to the same user.  (Also selectable for tcp in tests.)
``curve`` (tcp, when ``zmq.has("curve")`` — always true for pyzmq wheels)
    The primary generates a fresh server keypair at every start/promotion and stores it in
    ``.pando/auth/server.key`` (0600); the public key also goes into ``primary.json``.  Clients
    use one per-workdir client keypair from ``.pando/auth/client.key`` (0600, created once,
    atomically, by whoever needs it first).  The bus answers ZAP requests itself (on its I/O
    thread, bound before any listening socket) and admits only client public keys found in
    ``.pando/auth/client.key``.  Both PUB and ROUTER are CURVE servers, so events are encrypted
    and a peer without the keys can neither call nor subscribe.  A process that squats the port
    after the primary dies cannot impersonate it (clients pin the server key).
``token`` (tcp without CURVE)
    A random 32-byte token in ``.pando/auth/token`` (0600).  Every RPC carries it in
    ``meta.token``; the bus drops requests without the right token *silently* (no reply, no
    handler runs).  Events are HMAC-SHA256-signed with the token and clients drop unsigned or
    forged events (so a port squatter cannot fake heartbeats or promotions).  Limits, documented
    on purpose: events are not encrypted (any local user can read them over tcp), and a bearer
    token is revealed to a port squatter that a client talks to after the primary died.  Token
    mode is therefore only a fallback for zmq builds without ipc and without CURVE.

Everything under ``.pando/auth/`` is readable by the same user only (dir 0700, files 0600).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import zmq
from zmq.utils import z85

from .lock import atomic_write, ensure_pando_dir

__all__ = [
    "AuthError",
    "ClientAuth",
    "MECH_CURVE",
    "MECH_NONE",
    "MECH_TOKEN",
    "ServerAuth",
    "client_auth",
    "curve_available",
    "load_or_create_client_keypair",
    "load_or_create_token",
    "server_auth",
]

log = logging.getLogger(__name__)

MECH_NONE = "none"
MECH_CURVE = "curve"
MECH_TOKEN = "token"
Mechanism = Literal["none", "curve", "token"]

AUTH_DIR = "auth"
CLIENT_KEY_FILE = "client.key"
SERVER_KEY_FILE = "server.key"
TOKEN_FILE = "token"
ZAP_DOMAIN = b"pando"


class AuthError(RuntimeError):
    """Credentials are missing, unreadable or inconsistent."""


def curve_available() -> bool:
    return bool(zmq.has("curve"))


def _auth_dir(pando_dir: str | os.PathLike[str]) -> str:
    d = os.path.join(ensure_pando_dir(pando_dir), AUTH_DIR)
    ensure_pando_dir(d)  # same rules: 0700, ours
    return d


def _create_once(path: str, data: bytes) -> None:
    """Create *path* (0600) with *data* unless it exists; never overwrites, never exposes a
    partial file (write temp, then hard-link into place)."""
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.{time.monotonic_ns()}.new"
    atomic_write(tmp, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError:  # no hard links on this filesystem: exclusive create instead
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _read_private(path: str) -> bytes:
    try:
        st = os.stat(path)
        if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o077):
            raise AuthError(f"{path} must be owned by the current user with mode 0600")
        with open(path, "rb") as fh:
            return fh.read(64 * 1024)
    except OSError as exc:
        raise AuthError(f"cannot read {path}: {exc}") from exc


def _read_keypair(path: str) -> tuple[bytes, bytes]:
    try:
        obj = json.loads(_read_private(path))
        public, secret = obj["public"].encode("ascii"), obj["secret"].encode("ascii")
    except AuthError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AuthError(f"corrupt key file {path}: {exc}") from exc
    if len(public) != 40 or len(secret) != 40 or zmq.curve_public(secret) != public:
        raise AuthError(f"key file {path} does not hold a valid CURVE keypair")
    return public, secret


def _keypair_bytes(public: bytes, secret: bytes) -> bytes:
    return (json.dumps({"public": public.decode("ascii"), "secret": secret.decode("ascii")}) + "\n").encode()


def load_or_create_client_keypair(pando_dir: str | os.PathLike[str]) -> tuple[bytes, bytes]:
    """The per-workdir CURVE client keypair ``(public_z85, secret_z85)``; created on first use."""
    path = os.path.join(_auth_dir(pando_dir), CLIENT_KEY_FILE)
    if not os.path.exists(path):
        _create_once(path, _keypair_bytes(*zmq.curve_keypair()))
    return _read_keypair(path)


def load_or_create_token(pando_dir: str | os.PathLike[str]) -> bytes:
    """The per-workdir bearer token (ASCII hex, 64 chars); created on first use."""
    path = os.path.join(_auth_dir(pando_dir), TOKEN_FILE)
    if not os.path.exists(path):
        _create_once(path, (secrets.token_hex(32) + "\n").encode("ascii"))
    token = _read_private(path).strip()
    if len(token) < 32:
        raise AuthError(f"token file {path} is too short")
    return token


# ---------------------------------------------------------------------------------------------


@dataclass
class ServerAuth:
    """Credentials and policy applied by a :class:`~pando_core.runtime.bus.Bus`.

    Build it with :func:`server_auth`.  ``record_info()`` is what the primary publishes in
    ``primary.json`` so clients can build the matching :class:`ClientAuth`.
    """

    mechanism: Mechanism = MECH_NONE
    server_public: bytes | None = None
    server_secret: bytes | None = None
    allowed_clients: frozenset[bytes] = frozenset()
    token: bytes | None = None
    pando_dir: str | None = None
    _last_reload: float = field(default=0.0, repr=False)
    _last_reject_log: float = field(default=-1e9, repr=False)

    def record_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"mechanism": self.mechanism}
        if self.mechanism == MECH_CURVE and self.server_public:
            info["server_public_key"] = self.server_public.decode("ascii")
        return info

    # -- socket setup (called by the bus before bind) --------------------------------------
    def apply(self, sock: zmq.Socket) -> None:
        if self.mechanism == MECH_CURVE:
            if not (self.server_public and self.server_secret):
                raise AuthError("CURVE server auth without a keypair")
            sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN)
            sock.curve_secretkey = self.server_secret
            sock.curve_publickey = self.server_public
            sock.curve_server = True

    @property
    def needs_zap(self) -> bool:
        return self.mechanism == MECH_CURVE

    # -- checks ----------------------------------------------------------------------------
    def client_allowed(self, public_z85: bytes) -> bool:
        """True if a CURVE client key may connect.  On a miss, ``client.key`` is re-read (at most
        once per second) in case it was re-created while this primary was running."""
        if public_z85 in self.allowed_clients:
            return True
        now = time.monotonic()
        if self.pando_dir and now - self._last_reload > 1.0:
            self._last_reload = now
            try:
                public, _ = _read_keypair(os.path.join(self.pando_dir, AUTH_DIR, CLIENT_KEY_FILE))
            except AuthError:
                return False
            self.allowed_clients = self.allowed_clients | {public}
            return hmac.compare_digest(public, public_z85)
        return False

    def zap_reply(self, frames: list[bytes]) -> list[bytes]:
        """Answer one ZAP request (RFC 27) received on ``inproc://zeromq.zap.01``."""
        if len(frames) < 6:
            request_id = frames[1] if len(frames) > 1 else b""
            return [b"1.0", request_id, b"400", b"malformed ZAP request", b"", b""]
        version, request_id, _domain, _address, _identity, mechanism = frames[:6]
        credentials = frames[6:]
        if version != b"1.0":
            return [b"1.0", request_id, b"400", b"bad ZAP version", b"", b""]
        if self.mechanism == MECH_CURVE and mechanism == b"CURVE" and len(credentials) == 1:
            key = z85.encode(credentials[0])
            if self.client_allowed(key):
                return [b"1.0", request_id, b"200", b"OK", b"pando-client", b""]
            now = time.monotonic()
            if now - self._last_reject_log > 5.0:
                self._last_reject_log = now
                log.warning(
                    "rejected CURVE client with unknown public key %s", key.decode("ascii", "replace")
                )
            return [b"1.0", request_id, b"400", b"unknown key", b"", b""]
        return [b"1.0", request_id, b"400", b"mechanism not allowed", b"", b""]

    def check_token(self, meta: Any) -> bool:
        """Token mode: True if request ``meta`` carries the right token (constant-time)."""
        if self.mechanism != MECH_TOKEN:
            return True
        if not isinstance(meta, dict) or not isinstance(meta.get("token"), str) or not self.token:
            return False
        return hmac.compare_digest(meta["token"].encode("utf-8", "replace"), self.token)

    @property
    def event_key(self) -> bytes | None:
        """HMAC key for events (token mode only)."""
        return self.token if self.mechanism == MECH_TOKEN else None


@dataclass(frozen=True)
class ClientAuth:
    """Credentials a :class:`~pando_core.runtime.client.Client` applies; build with
    :func:`client_auth`."""

    mechanism: Mechanism = MECH_NONE
    server_public: bytes | None = None
    client_public: bytes | None = None
    client_secret: bytes | None = None
    token: bytes | None = None

    def apply(self, sock: zmq.Socket) -> None:
        """Configure *sock* before ``connect``."""
        if self.mechanism == MECH_CURVE:
            if not (self.server_public and self.client_public and self.client_secret):
                raise AuthError("CURVE client auth is missing keys")
            sock.curve_serverkey = self.server_public
            sock.curve_publickey = self.client_public
            sock.curve_secretkey = self.client_secret

    def request_meta(self) -> dict[str, Any]:
        """Extra request ``meta`` members (the token in token mode)."""
        if self.mechanism == MECH_TOKEN and self.token:
            return {"token": self.token.decode("ascii")}
        return {}

    @property
    def event_key(self) -> bytes | None:
        return self.token if self.mechanism == MECH_TOKEN else None


def server_auth(
    pando_dir: str | os.PathLike[str],
    transport: str,
    *,
    mechanism: Literal["auto", "none", "curve", "token"] = "auto",
) -> ServerAuth:
    """Credentials for a primary's bus on *transport* (``"ipc"``/``"tcp"``).

    ``auto``: ipc -> none; tcp -> curve if available, else token.  For curve a fresh server
    keypair is generated and stored in ``.pando/auth/server.key`` (0600), and the client keypair
    is created if missing.  Raises AuthError (e.g. curve requested but unavailable).
    """
    if mechanism == "auto":
        mechanism = MECH_NONE if transport == "ipc" else (MECH_CURVE if curve_available() else MECH_TOKEN)
    pando_dir = os.fspath(pando_dir)
    if mechanism == MECH_NONE:
        return ServerAuth(MECH_NONE, pando_dir=pando_dir)
    if mechanism == MECH_CURVE:
        if not curve_available():
            raise AuthError("CURVE requested but this libzmq has no CURVE support")
        public, secret = zmq.curve_keypair()
        atomic_write(os.path.join(_auth_dir(pando_dir), SERVER_KEY_FILE), _keypair_bytes(public, secret))
        client_public, _ = load_or_create_client_keypair(pando_dir)
        return ServerAuth(
            MECH_CURVE,
            server_public=public,
            server_secret=secret,
            allowed_clients=frozenset({client_public}),
            pando_dir=pando_dir,
        )
    if mechanism == MECH_TOKEN:
        return ServerAuth(MECH_TOKEN, token=load_or_create_token(pando_dir), pando_dir=pando_dir)
    raise ValueError(f"unknown auth mechanism {mechanism!r}")


def client_auth(pando_dir: str | os.PathLike[str], record_auth: dict[str, Any] | None) -> ClientAuth:
    """Credentials to talk to the primary described by ``PrimaryRecord.auth`` (*record_auth*).

    For curve the server key comes from the record (falling back to ``.pando/auth/server.key``
    when the record has none); the client keypair and token come from ``.pando/auth/``.
    """
    record_auth = record_auth or {}
    mech = record_auth.get("mechanism", MECH_NONE)
    if mech == MECH_NONE:
        return ClientAuth(MECH_NONE)
    if mech == MECH_CURVE:
        server_public = record_auth.get("server_public_key")
        if isinstance(server_public, str):
            server_public_b = server_public.encode("ascii")
        else:
            server_public_b, _ = _read_keypair(os.path.join(_auth_dir(pando_dir), SERVER_KEY_FILE))
        if len(server_public_b) != 40:
            raise AuthError("invalid server public key in primary record")
        public, secret = load_or_create_client_keypair(pando_dir)
        return ClientAuth(
            MECH_CURVE, server_public=server_public_b, client_public=public, client_secret=secret
        )
    if mech == MECH_TOKEN:
        return ClientAuth(MECH_TOKEN, token=load_or_create_token(pando_dir))
    raise AuthError(f"primary uses unknown auth mechanism {mech!r}")
