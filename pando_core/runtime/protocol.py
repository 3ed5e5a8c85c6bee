"""Wire protocol of the Pando IPC bus: event envelope, topics, JSON-RPC 2.0 messages, error codes.

Everything that crosses a socket is defined here so that the bus (primary) and the client
(secondary) agree on one encoding.  Nothing in this module touches a socket.

Events (PUB -> SUB)
    One ZeroMQ frame per event: ``topic_bytes + b"\\0" + envelope_json``.  Subscribers filter by
    prefix on that frame, so subscribing to ``"db.session."`` receives every ``db.session.*``
    event and ``exact_topic("session.update")`` (topic + NUL) matches that topic only.  When the
    bus runs in token mode (see :mod:`.auth`) an HMAC is appended: ``... + b"\\0" + hex_hmac``
    (JSON never contains a raw NUL, so the split is unambiguous).

    Envelope JSON (keys in this order)::

        {"v": 1, "topic": str, "seq": int, "epoch": int, "instance_id": str, "ts": int (ms),
         "payload": <any JSON>}

    ``seq`` starts at 1 and increases by one for every event a bus publishes (all topics share
    one counter) within one ``epoch``; a subscriber that follows *all* topics can detect loss by
    a gap.  A subscriber that filters topics sees gaps by construction.

RPC (DEALER -> ROUTER), JSON-RPC 2.0
    Request: ``{"jsonrpc": "2.0", "id": str|int, "method": str, "params": object|array,
    "meta": {...}}``.  ``id`` absent = notification (no reply).  ``meta`` is a Pando extension:
    ``instance_id`` (caller), ``timeout_ms`` (the caller's remaining patience; the server skips
    work whose deadline passed) and ``token`` (token-auth mode only).
    Response: ``{"jsonrpc": "2.0", "id": ..., "result": ...}`` or ``{..., "error": {"code",
    "message", "data": {"kind": str, ...}}}``.  ``result`` is always present on success (``null``
    for void methods).  ``error.data.kind`` carries a stable string (``"not_found"``,
    ``"constraint"``, ...) so error kinds survive the wire; :class:`RpcError` re-creates it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jiter

from ..clock import now_ms

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "ENVELOPE_VERSION",
    "Event",
    "ProtocolError",
    "Request",
    "Response",
    "RpcError",
    "RpcTimeout",
    "db_topic",
    "decode_event",
    "decode_json",
    "encode_event",
    "encode_json",
    "encode_error",
    "encode_request",
    "encode_result",
    "exact_topic",
    "kind_for_code",
    "code_for_kind",
    "now_ms",
    "parse_request",
    "parse_response",
    "peek_request_id",
    "validate_topic",
    "zmq_max_msgsize",
]

# ---------------------------------------------------------------------------------------------
# Limits

#: Default cap (bytes) for one RPC request/response frame.  Bus and Client take a
#: ``max_message_bytes`` argument; messages above it get a ``too_large`` error instead of being
#: processed.  libzmq's own MAXMSGSIZE is set to a multiple of this as a hard memory guard.
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def zmq_max_msgsize(max_message_bytes: int) -> int:
    """libzmq ``MAXMSGSIZE`` for sockets whose messages are capped at *max_message_bytes*: a hard
    memory guard well above the cap, so over-cap messages still arrive and get ``too_large``."""
    return max(4 * max_message_bytes, max_message_bytes + 65536)


#: Version number written in every event envelope (``"v"``).
ENVELOPE_VERSION = 1

#: Longest request id string accepted by the bus.
MAX_ID_LENGTH = 256

# ---------------------------------------------------------------------------------------------
# Topics the core publishes (besides the change events, ``db.<table>.<op>``)

INSTANCE_HEARTBEAT = "instance.heartbeat"
INSTANCE_SHUTDOWN = "instance.shutdown"
INSTANCE_PROMOTED = "instance.promoted"
SESSION_INTERRUPT = "session.interrupt"  # RPC and event: cancel a session's running turn anywhere
STATE_RESYNC = "state.resync"  # local only: a secondary lost events and fetched the primary's state

#: Prefix of every instance lifecycle topic (the client always subscribes to it for liveness).
INSTANCE_PREFIX = "instance."
#: Prefix of every database change topic (``db.<table>.<op>``).
DB_PREFIX = "db."

ALL_TOPICS = (
    INSTANCE_HEARTBEAT,
    INSTANCE_SHUTDOWN,
    INSTANCE_PROMOTED,
    SESSION_INTERRUPT,
)

# Built-in RPC methods served by every bus.
METHOD_PING = "instance.ping"
METHOD_INFO = "instance.info"

_TOPIC_PART = re.compile(r"^[A-Za-z0-9_\-]+$")


def validate_topic(topic: str) -> str:
    """Return *topic* if it is usable on the wire (non-empty str without NUL), else raise ValueError."""
    if not isinstance(topic, str) or not topic:
        raise ValueError("topic must be a non-empty string")
    if "\0" in topic:
        raise ValueError("topic must not contain NUL")
    return topic


def db_topic(table: str, op: str) -> str:
    """Topic of a database change event: ``db.<table>.<op>`` (e.g. ``db.session.created``).

    Both parts must match ``[A-Za-z0-9_-]+`` so that prefix subscriptions stay unambiguous.
    """
    for part, what in ((table, "table"), (op, "op")):
        if not isinstance(part, str) or not _TOPIC_PART.match(part):
            raise ValueError(f"invalid {what} for db topic: {part!r}")
    return f"{DB_PREFIX}{table}.{op}"


def exact_topic(topic: str) -> str:
    """Subscription prefix that matches *topic* exactly (topic + NUL), not ``topic…``."""
    return validate_topic(topic) + "\0"


# ---------------------------------------------------------------------------------------------
# JSON helpers


class ProtocolError(ValueError):
    """A frame or message could not be decoded / does not follow the protocol."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def _not_json(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# built once: json.dumps/loads with options build a new encoder/decoder on every call
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# JSONEncoder.encode builds its C encoder again on every call (a quarter of the cost of encoding
# a row); this one is built once. Without a markers dict (it would be shared between threads), a
# circular structure ends in RecursionError, reported as json does (ValueError).
_C_ENCODE = (
    json.encoder.c_make_encoder(None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    if json.encoder.c_make_encoder is not None
    else None
)


_jiter_loads = jiter.from_json
_encode_string = json.encoder.encode_basestring  # a str as JSON (C; no encoder round)


def encode_json(obj: Any) -> str:
    """Compact, strict JSON (no NaN/Infinity); raises TypeError/ValueError if not JSON-able."""
    if _C_ENCODE is None:
        return _ENCODER.encode(obj)
    try:
        return "".join(_C_ENCODE(obj, 0))
    except RecursionError:
        raise ValueError("Circular reference detected") from None


def decode_json(data: bytes | str) -> Any:
    """Strict JSON decode (UTF-8, no NaN/Infinity); raises ProtocolError on any failure.

    Bytes are parsed by jiter first (Rust, 2-3x faster than the json module on a row: a few
    microseconds off each proxied write); what it refuses goes to the json module, so what is
    accepted, and how, is the json module's rule (jiter refuses where they differ: lone
    surrogates, nesting beyond its limit)."""
    if type(data) is bytes:
        try:
            return _jiter_loads(data, allow_inf_nan=False, cache_mode="keys")
        except ValueError:
            pass  # the json module decides, and words the error
    try:
        if not isinstance(data, str):
            data = (data if isinstance(data, bytes) else bytes(data)).decode("utf-8")
        return _DECODER.decode(data)
    except (ValueError, TypeError, RecursionError) as exc:
        raise ProtocolError(f"invalid JSON: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True, slots=True)
class Event:
    """One published event (decoded envelope)."""

    topic: str
    seq: int
    epoch: int
    instance_id: str
    ts: int
    payload: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": ENVELOPE_VERSION,
            "topic": self.topic,
            "seq": self.seq,
            "epoch": self.epoch,
            "instance_id": self.instance_id,
            "ts": self.ts,
            "payload": self.payload,
        }


def _event_mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, b"pando-event\0" + body, hashlib.sha256).hexdigest().encode("ascii")


def encode_event_frame(
    topic: str,
    seq: int,
    epoch: int,
    instance_id: str,
    ts: int,
    payload_json: str,
    *,
    sign_key: bytes | None = None,
) -> bytes:
    """Build the wire frame from an already-encoded payload (used by the bus I/O thread)."""
    header = encode_json(
        {
            "v": ENVELOPE_VERSION,
            "topic": topic,
            "seq": seq,
            "epoch": epoch,
            "instance_id": instance_id,
            "ts": ts,
        }
    )
    body = (
        topic.encode("utf-8")
        + b"\0"
        + header[:-1].encode("utf-8")
        + b',"payload":'
        + payload_json.encode("utf-8")
        + b"}"
    )
    if sign_key is not None:
        body += b"\0" + _event_mac(sign_key, body)
    return body


def encode_event(event: Event, *, sign_key: bytes | None = None) -> bytes:
    """Encode *event* as one PUB frame (``topic\\0json`` [``\\0hmac``])."""
    validate_topic(event.topic)
    return encode_event_frame(
        event.topic,
        event.seq,
        event.epoch,
        event.instance_id,
        event.ts,
        encode_json(event.payload),
        sign_key=sign_key,
    )


def decode_event(frame: bytes, *, verify_key: bytes | None = None) -> Event:
    """Decode one PUB frame; raises ProtocolError for anything malformed or (with *verify_key*)
    unsigned / wrongly signed."""
    frame = bytes(frame)
    topic_b, sep, rest = frame.partition(b"\0")
    if not sep:
        raise ProtocolError("event frame without NUL separator")
    if verify_key is not None:
        body_json, sep2, mac = rest.rpartition(b"\0")
        if not sep2:
            raise ProtocolError("unsigned event")
        expected = _event_mac(verify_key, topic_b + b"\0" + body_json)
        if not hmac.compare_digest(mac, expected):
            raise ProtocolError("bad event signature")
        rest = body_json
    obj = decode_json(rest)
    if not isinstance(obj, dict):
        raise ProtocolError("event envelope is not an object")
    try:
        topic = topic_b.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("event topic is not UTF-8") from None
    if obj.get("topic") != topic:
        raise ProtocolError("envelope topic does not match frame topic")
    seq, epoch, ts, iid = obj.get("seq"), obj.get("epoch"), obj.get("ts"), obj.get("instance_id")
    for name, value in (("seq", seq), ("epoch", epoch), ("ts", ts)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ProtocolError(f"envelope {name} is not an integer")
    if not isinstance(iid, str):
        raise ProtocolError("envelope instance_id is not a string")
    return Event(topic=topic, seq=seq, epoch=epoch, instance_id=iid, ts=ts, payload=obj.get("payload"))


# ---------------------------------------------------------------------------------------------
# Error codes and RpcError

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# Application codes (JSON-RPC reserves -32000..-32099 for implementation-defined server errors).
APP_ERROR = -32000  # generic handler failure
UNAVAILABLE = -32001  # retryable: primary busy/draining/shutting down
TIMEOUT = -32002  # deadline passed (server side) / no reply in time (client side)
NOT_FOUND = -32004
CONSTRAINT = -32009  # unique / foreign-key / check constraint violation (a "conflict")
VALIDATION = -32010  # semantically invalid input that passed the type checks
TOO_LARGE = -32011  # message above the size cap
UNAUTHORIZED = -32012  # only used locally; unauthenticated requests get no reply at all

KIND_PARSE_ERROR = "parse_error"
KIND_INVALID_REQUEST = "invalid_request"
KIND_METHOD_NOT_FOUND = "method_not_found"
KIND_INVALID_PARAMS = "invalid_params"
KIND_INTERNAL = "internal"
KIND_APP_ERROR = "app_error"
KIND_UNAVAILABLE = "unavailable"
KIND_TIMEOUT = "timeout"
KIND_NOT_FOUND = "not_found"
KIND_CONSTRAINT = "constraint"
KIND_VALIDATION = "validation"
KIND_TOO_LARGE = "too_large"
KIND_UNAUTHORIZED = "unauthorized"
KIND_CLOSED = "closed"

_CODE_TO_KIND: dict[int, str] = {
    PARSE_ERROR: KIND_PARSE_ERROR,
    INVALID_REQUEST: KIND_INVALID_REQUEST,
    METHOD_NOT_FOUND: KIND_METHOD_NOT_FOUND,
    INVALID_PARAMS: KIND_INVALID_PARAMS,
    INTERNAL_ERROR: KIND_INTERNAL,
    APP_ERROR: KIND_APP_ERROR,
    UNAVAILABLE: KIND_UNAVAILABLE,
    TIMEOUT: KIND_TIMEOUT,
    NOT_FOUND: KIND_NOT_FOUND,
    CONSTRAINT: KIND_CONSTRAINT,
    VALIDATION: KIND_VALIDATION,
    TOO_LARGE: KIND_TOO_LARGE,
    UNAUTHORIZED: KIND_UNAUTHORIZED,
}
_KIND_TO_CODE: dict[str, int] = {v: k for k, v in _CODE_TO_KIND.items()}
_KIND_TO_CODE[KIND_CLOSED] = UNAVAILABLE

#: Kinds after which the *same* request may simply be sent again (nothing was applied).
RETRYABLE_KINDS = frozenset({KIND_UNAVAILABLE})


def kind_for_code(code: int) -> str:
    """Default kind string for a numeric code (unknown codes -> ``"app_error"``)."""
    return _CODE_TO_KIND.get(code, KIND_APP_ERROR)


def code_for_kind(kind: str) -> int:
    """Default numeric code for a kind string (unknown kinds -> APP_ERROR)."""
    return _KIND_TO_CODE.get(kind, APP_ERROR)


class RpcError(Exception):
    """An error that travels as a JSON-RPC error object.

    Raise it from a bus handler to send a specific error; the client raises it (same ``code``,
    ``message``, ``kind`` and ``data``) from ``call()``.  ``kind`` defaults from ``code`` and vice
    versa, so ``RpcError(kind="not_found", message="no such session")`` is enough.
    ``data`` must be JSON-able (a dict is merged into ``error.data`` next to ``kind``).
    """

    def __init__(
        self,
        code: int | None = None,
        message: str = "",
        data: Any = None,
        *,
        kind: str | None = None,
    ) -> None:
        if code is None:
            code = code_for_kind(kind) if kind else APP_ERROR
        self.code = int(code)
        self.kind = kind or kind_for_code(self.code)
        self.message = str(message) or self.kind.replace("_", " ")
        self.data = data
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message} [{self.kind} {self.code}]"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, message={self.message!r}, kind={self.kind!r}, data={self.data!r})"

    @property
    def retryable(self) -> bool:
        """True when the request was certainly not applied and may be re-sent as is."""
        return self.kind in RETRYABLE_KINDS

    # -- convenience constructors ---------------------------------------------------------
    @classmethod
    def not_found(cls, message: str = "not found", data: Any = None) -> RpcError:
        return cls(NOT_FOUND, message, data)

    @classmethod
    def constraint(cls, message: str = "constraint violation", data: Any = None) -> RpcError:
        return cls(CONSTRAINT, message, data)

    @classmethod
    def validation(cls, message: str = "validation failed", data: Any = None) -> RpcError:
        return cls(VALIDATION, message, data)

    @classmethod
    def invalid_params(cls, message: str = "invalid params", data: Any = None) -> RpcError:
        return cls(INVALID_PARAMS, message, data)

    @classmethod
    def unavailable(cls, message: str = "unavailable", data: Any = None) -> RpcError:
        return cls(UNAVAILABLE, message, data)

    # -- wire ------------------------------------------------------------------------------
    def to_wire(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` object."""
        data: dict[str, Any] = {"kind": self.kind}
        if isinstance(self.data, Mapping):
            data.update({k: v for k, v in self.data.items() if k != "kind"})
        elif self.data is not None:
            data["detail"] = self.data
        return {"code": self.code, "message": self.message, "data": data}

    @classmethod
    def from_wire(cls, err: Any) -> RpcError:
        """Rebuild from a JSON-RPC ``error`` object (tolerant of foreign/missing fields)."""
        if not isinstance(err, Mapping):
            return cls(INTERNAL_ERROR, f"malformed error object: {err!r}")
        code = err.get("code")
        if not isinstance(code, int) or isinstance(code, bool):
            code = INTERNAL_ERROR
        message = err.get("message")
        message = message if isinstance(message, str) else ""
        raw = err.get("data")
        kind = None
        data: Any = raw
        if isinstance(raw, Mapping):
            k = raw.get("kind")
            kind = k if isinstance(k, str) and k else None
            rest = {key: v for key, v in raw.items() if key != "kind"}
            if set(rest) == {"detail"}:
                data = rest["detail"]
            else:
                data = rest or None
        if kind == KIND_TIMEOUT:
            return RpcTimeout(message, sent=True, code=code, data=data)
        return cls(code, message, data, kind=kind)


class RpcTimeout(RpcError):
    """No reply before the deadline.

    Deliberately *not* a subclass of the built-in ``TimeoutError``: on Python 3.11
    ``concurrent.futures.TimeoutError`` *is* ``TimeoutError``, so ``future.result(t)`` wrapped in
    ``except concurrent.futures.TimeoutError`` would otherwise swallow an RpcTimeout (and its
    ``sent`` flag) stored in the future.

    ``sent`` tells whether the request left this process: ``False`` means it was certainly not
    applied (safe to retry); ``True`` means the outcome is unknown ("ambiguous") and a retry must
    use the same idempotency key.
    """

    def __init__(
        self, message: str = "timed out", *, sent: bool = True, code: int = TIMEOUT, data: Any = None
    ) -> None:
        super().__init__(code, message, data, kind=KIND_TIMEOUT)
        self.sent = sent


class CallInterrupted(RpcTimeout):
    """The call was sent, then the connection it was sent on was replaced (the client followed a
    new primary) or closed: no reply can come. Like any sent timeout the outcome is unknown, so
    resend at once with the same idempotency key."""

    def __init__(self, method: str) -> None:
        super().__init__(f"{method}: the connection to the primary was replaced while waiting", sent=True)


# ---------------------------------------------------------------------------------------------
# JSON-RPC messages


@dataclass(slots=True)
class Request:
    """A validated JSON-RPC request. ``id is None`` means notification."""

    method: str
    params: Any
    id: str | int | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def is_notification(self) -> bool:
        return self.id is None


@dataclass(slots=True)
class Response:
    """A decoded JSON-RPC response: exactly one of ``result`` / ``error`` is meaningful."""

    id: str | int | None
    result: Any = None
    error: RpcError | None = None


def valid_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, str) and len(value) <= MAX_ID_LENGTH


def encode_request(
    id: str | int | None,
    method: str,
    params: Any = None,
    meta: Mapping[str, Any] | None = None,
    *,
    encoded_meta: str | None = None,
) -> bytes:
    """Encode a request (``id=None`` -> notification).  Key order puts ``id`` right after
    ``jsonrpc`` so a server can recover it from an oversized message (:func:`peek_request_id`).
    *encoded_meta*: ``meta`` already encoded (the requests of a batch share one), used instead."""
    if id is not None and not valid_id(id):
        raise ValueError(f"invalid request id {id!r}")
    if not isinstance(method, str) or not method:
        raise ValueError("method must be a non-empty string")
    if params is not None and not isinstance(params, dict | list):
        raise TypeError("params must be a dict, a list or None")
    msg: dict[str, Any] = {"jsonrpc": "2.0"}
    if id is not None:
        msg["id"] = id
    msg["method"] = method
    if params is not None:
        msg["params"] = params
    if encoded_meta is not None:  # meta is the last key: spliced in before the closing brace
        return (encode_json(msg)[:-1] + ',"meta":' + encoded_meta + "}").encode("utf-8")
    if meta:
        msg["meta"] = dict(meta)
    return encode_json(msg).encode("utf-8")


class EncodedJSON(str):
    """Text that already is JSON: a result given as this goes into the reply as it is (a handler
    that had to encode its result anyway saves encoding it twice)."""

    __slots__ = ()


def encode_result(id: str | int | None, result: Any) -> bytes:
    """Encode a success response (raises TypeError/ValueError if *result* is not JSON-able)."""
    if isinstance(result, EncodedJSON):
        rid = _encode_string(id) if type(id) is str else encode_json(id)
        return ('{"jsonrpc":"2.0","id":' + rid + ',"result":' + result + "}").encode("utf-8")
    return encode_json({"jsonrpc": "2.0", "id": id, "result": result}).encode("utf-8")


def encode_error(id: str | int | None, error: RpcError) -> bytes:
    """Encode an error response; falls back to a plain message if ``error.data`` is not JSON-able."""
    try:
        return encode_json({"jsonrpc": "2.0", "id": id, "error": error.to_wire()}).encode("utf-8")
    except (TypeError, ValueError):
        plain = {"code": error.code, "message": error.message, "data": {"kind": error.kind}}
        return encode_json({"jsonrpc": "2.0", "id": id, "error": plain}).encode("utf-8")


class RequestError(Exception):
    """Raised by :func:`parse_request`: the error to reply and the id to reply to (may be None)."""

    def __init__(self, error: RpcError, id: str | int | None, notification: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.id = id
        self.notification = notification


def parse_request(obj: Any) -> Request:
    """Validate a decoded JSON value as a JSON-RPC 2.0 request.

    Raises :class:`RequestError` with the JSON-RPC error to send back (``id`` = the request id
    when it could be determined, else None).  Batches (arrays) are not supported.
    """
    if not isinstance(obj, dict):
        what = (
            "batch requests are not supported" if isinstance(obj, list) else "request must be a JSON object"
        )
        raise RequestError(RpcError(INVALID_REQUEST, what), None)
    has_id = "id" in obj
    rid = obj.get("id")
    if has_id and not valid_id(rid):
        raise RequestError(RpcError(INVALID_REQUEST, "id must be a string (<=256 chars) or an integer"), None)
    notification = not has_id
    if obj.get("jsonrpc") != "2.0":
        raise RequestError(RpcError(INVALID_REQUEST, 'jsonrpc must be "2.0"'), rid, notification)
    method = obj.get("method")
    if not isinstance(method, str) or not method:
        raise RequestError(RpcError(INVALID_REQUEST, "method must be a non-empty string"), rid, notification)
    params = obj.get("params")
    if params is not None and not isinstance(params, dict | list):
        raise RequestError(
            RpcError(INVALID_PARAMS, "params must be an object or an array"), rid, notification
        )
    meta = obj.get("meta")
    if meta is None:
        meta = {}
    elif not isinstance(meta, dict):
        raise RequestError(RpcError(INVALID_REQUEST, "meta must be an object"), rid, notification)
    return Request(method=method, params=params, id=rid, meta=meta)


def parse_response(obj: Any) -> Response:
    """Validate a decoded JSON value as a JSON-RPC 2.0 response; raises ProtocolError."""
    if not isinstance(obj, dict) or obj.get("jsonrpc") != "2.0" or "id" not in obj:
        raise ProtocolError("not a JSON-RPC 2.0 response")
    rid = obj["id"]
    if rid is not None and not valid_id(rid):
        raise ProtocolError("invalid response id")
    if "error" in obj:
        return Response(id=rid, error=RpcError.from_wire(obj["error"]))
    return Response(id=rid, result=obj.get("result"))


_ID_PREFIX = re.compile(
    rb'^\s*\{\s*"jsonrpc"\s*:\s*"2\.0"\s*,\s*"id"\s*:\s*(?:"((?:[^"\\]|\\.){0,256})"|(-?\d{1,19}))\s*[,}]'
)


def peek_request_id(data: bytes) -> str | int | None:
    """Best-effort id of a request that is too large to parse.

    Only recognises the canonical key order produced by :func:`encode_request`
    (``{"jsonrpc":"2.0","id":...``), so an ``id`` nested inside ``params`` is never mistaken for
    the request id.  Returns None when unsure.
    """
    m = _ID_PREFIX.match(bytes(data[:600]))
    if not m:
        return None
    if m.group(1) is not None:
        try:
            value = json.loads(b'"' + m.group(1) + b'"')
        except ValueError:
            return None
        return value if valid_id(value) else None
    value = int(m.group(2))
    return value if valid_id(value) else None
