from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pando_core.runtime import protocol as P


def test_event_roundtrip_and_frame_layout():
    ev = P.Event("db.session.created", 7, 2, "iid", 123, {"id": "s1", "ü": [1, None]})
    frame = P.encode_event(ev)
    topic, _, body = frame.partition(b"\0")
    assert topic == b"db.session.created"
    assert list(json.loads(body)) == ["v", "topic", "seq", "epoch", "instance_id", "ts", "payload"]
    assert P.decode_event(frame) == ev


def test_signed_events_reject_forgery():
    ev = P.Event("instance.heartbeat", 1, 1, "iid", 5, None)
    key = b"k" * 32
    signed = P.encode_event(ev, sign_key=key)
    assert P.decode_event(signed, verify_key=key) == ev
    for forged in (
        P.encode_event(ev),
        P.encode_event(ev, sign_key=b"x" * 32),
        signed.replace(b'"seq":1', b'"seq":2'),
    ):
        with pytest.raises(P.ProtocolError):
            P.decode_event(forged, verify_key=key)


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"no-separator",
        b"t\0not json",
        b"t\0[]",
        b't\0{"topic":"other","seq":1,"epoch":1,"ts":1,"instance_id":"x"}',
        b't\0{"topic":"t","seq":"1","epoch":1,"ts":1,"instance_id":"x"}',
        b"\xff\0{}",
    ],
)
def test_bad_event_frames(frame):
    with pytest.raises(P.ProtocolError):
        P.decode_event(frame)


def test_topics():
    assert P.db_topic("session", "created") == "db.session.created"
    with pytest.raises(ValueError):
        P.db_topic("a.b", "c")
    assert P.exact_topic("session.update") == "session.update\0"
    with pytest.raises(ValueError):
        P.validate_topic("a\0b")
    assert len(set(P.ALL_TOPICS)) == len(P.ALL_TOPICS)


def test_rpc_error_wire_roundtrip_preserves_kind_and_data():
    for err in (
        P.RpcError.not_found("no session", {"id": "s1"}),
        P.RpcError.constraint("dup"),
        P.RpcError(kind="custom_kind", message="m", data=[1, 2]),
        P.RpcError(-32099, "odd"),
    ):
        back = P.RpcError.from_wire(json.loads(json.dumps(err.to_wire())))
        assert (back.code, back.kind, back.message, back.data) == (err.code, err.kind, err.message, err.data)
    t = P.RpcError.from_wire(P.RpcTimeout("late").to_wire())
    assert isinstance(t, P.RpcTimeout) and not isinstance(t, TimeoutError)
    assert P.RpcError.unavailable().retryable and not P.RpcError.not_found().retryable
    assert P.RpcError.from_wire("garbage").kind == "internal"


def test_parse_request_cases():
    ok = P.parse_request({"jsonrpc": "2.0", "id": "1", "method": "m", "params": {"a": 1}})
    assert (ok.id, ok.method, ok.params, ok.is_notification) == ("1", "m", {"a": 1}, False)
    assert P.parse_request({"jsonrpc": "2.0", "method": "m"}).is_notification
    cases = [
        ([], None, P.INVALID_REQUEST),
        ("x", None, P.INVALID_REQUEST),
        ({"jsonrpc": "1.0", "id": 1, "method": "m"}, 1, P.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": True, "method": "m"}, None, P.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": 1.5, "method": "m"}, None, P.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": "x", "method": ""}, "x", P.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": "x", "method": "m", "params": "s"}, "x", P.INVALID_PARAMS),
        ({"jsonrpc": "2.0", "id": "x", "method": "m", "meta": 3}, "x", P.INVALID_REQUEST),
    ]
    for obj, rid, code in cases:
        with pytest.raises(P.RequestError) as info:
            P.parse_request(obj)
        assert info.value.id == rid and info.value.error.code == code


def test_peek_request_id_only_trusts_canonical_prefix():
    data = P.encode_request("req-9", "m", {"blob": "x" * 1000})
    assert P.peek_request_id(data) == "req-9"
    assert P.peek_request_id(P.encode_request(42, "m")) == 42
    assert P.peek_request_id(b'{"params":{"id":"evil"},"jsonrpc":"2.0","id":"x"}') is None
    assert P.peek_request_id(b'{"jsonrpc":"2.0","method":"m","id":"x"}') is None
    assert P.peek_request_id(b"\xff" * 10) is None


def test_strict_json():
    with pytest.raises(P.ProtocolError):
        P.decode_json(b"NaN")
    with pytest.raises(P.ProtocolError):
        P.decode_json(b"[" * 100_000)
    with pytest.raises(ValueError):
        P.encode_json(float("nan"))


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)  # beyond 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


def _same(a, b) -> bool:  # noqa: ANN001 - equal, with the same types, all the way down (-0.0 included)
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(value=_json_values, spaced=st.booleans())
def test_decode_json_reads_what_the_json_module_reads(value, spaced):
    text = json.dumps(value, indent=1 if spaced else None, ensure_ascii=not spaced)
    assert _same(P.decode_json(text.encode()), json.loads(text))


@pytest.mark.parametrize(
    "data",
    [
        b'"\\ud800"',  # a lone surrogate escape: json keeps it
        b"[" * 520 + b"]" * 520,  # deeper than jiter goes
        b"1e400",  # too large for a float: json says inf
        b'{"a":1,"a":2}',  # the last one wins
        b"123456789012345678901234567890",
    ],
)
def test_decode_json_follows_the_json_module_where_fast_parsers_differ(data):
    decoded, expected = P.decode_json(data), json.loads(data.decode())
    assert decoded == expected and type(decoded) is type(expected)


@pytest.mark.parametrize("data", [b"NaN", b"-Infinity", b"[1,]", b"\xff", b"\xef\xbb\xbf[1]", b"", b"[1] x"])
def test_decode_json_refuses_what_the_json_module_refuses(data):
    with pytest.raises(P.ProtocolError):
        P.decode_json(data)


@pytest.mark.parametrize(
    "value",
    ["x", "é \u2028 \"q\" \\", 0, -7, 2.5, 1e300, None, True, [], {}, [1, {"a": [None, False, "ü"]}], {1: "int key", "k": {"n": 1.5}}],
)
def test_encode_json_is_compact_strict_json(value):
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    assert P.encode_json(value) == expected
    assert json.loads(P.encode_json(value)) == json.loads(expected)


def test_encode_json_refuses_what_json_refuses():
    for bad in (float("inf"), {"a": float("nan")}):
        with pytest.raises(ValueError):
            P.encode_json(bad)
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        P.encode_json({"a": object()})
    circular: list = []
    circular.append(circular)
    with pytest.raises(ValueError, match="Circular"):
        P.encode_json(circular)
    assert P.encode_json({"after": "errors"}) == '{"after":"errors"}'  # nothing left behind


@pytest.mark.parametrize("rid", ["abc-1", 7, None])
@pytest.mark.parametrize("result", [{"result": {"id": "s1", "title": "é \"q\""}}, [1, 2.5, None], "text", 0])
def test_an_already_encoded_result_makes_the_same_reply(rid, result):
    pre = P.EncodedJSON(P.encode_json(result))
    assert P.encode_result(rid, pre) == P.encode_result(rid, result)
    assert P.parse_response(P.decode_json(P.encode_result(rid, pre))).result == result
