"""Random frames / bytes / JSON at the ROUTER: the bus answers what it can, drops the rest, and
keeps serving."""

from __future__ import annotations

import json

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pando_core.runtime import protocol as P
from pando_core.runtime.client import RpcError

CAP = 2048

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=6,
)
methods = st.sampled_from(
    ["instance.ping", "instance.info", "echo", "obj", "arr", "fail", "crash", "nope", ""]
) | st.text(max_size=12)
request_like = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "2.0", "1.0", 2.0]) | json_values,
        "id": st.text(max_size=300) | st.integers(min_value=-(2**70), max_value=2**70) | json_values,
        "method": methods | json_values,
        "params": json_values,
        "meta": st.fixed_dictionaries(
            {}, optional={"instance_id": st.text(max_size=5), "timeout_ms": st.integers() | st.floats()}
        )
        | json_values,
    },
)


def _dumps(obj) -> bytes:
    return json.dumps(obj).encode()


payloads = st.one_of(
    st.binary(max_size=200),
    json_values.map(_dumps),
    request_like.map(_dumps),
    request_like.map(_dumps),
    request_like.map(lambda r: _dumps(r)[: max(0, len(_dumps(r)) - 3)]),  # truncated
    st.lists(request_like | json_values, max_size=6).map(_dumps),  # batches, valid or not
    st.integers(min_value=CAP + 1, max_value=3 * CAP).map(
        lambda n: b'{"jsonrpc":"2.0","id":"big","method":"echo","params":["' + b"x" * n + b'"]}'
    ),
    st.integers(min_value=1, max_value=5000).map(lambda n: b"[" * n),  # nesting bomb
    st.sampled_from(
        [b"\xff\xfe\xfd", b'{"jsonrpc":"2.0","id":"n","method":"echo","params":NaN}', b"1e99999", b"9" * 5000]
    ),
)
frames_strategy = st.one_of(
    payloads.map(lambda p: [b"", p]),
    payloads.map(lambda p: [p]),
    st.lists(st.binary(max_size=40), min_size=1, max_size=5),
    st.tuples(payloads, st.binary(max_size=10)).map(lambda t: [t[1], b"", t[0]]),
)


def _check_reply(frames: list[bytes]) -> None:
    reply = json.loads(frames[-1])
    if isinstance(reply, list):  # a batch's answers
        assert reply
        for answer in reply:
            _check_answer(answer)
    else:
        _check_answer(reply)


def _check_answer(reply: dict) -> None:
    assert reply["jsonrpc"] == "2.0" and "id" in reply
    assert ("result" in reply) != ("error" in reply)
    if "error" in reply:
        assert isinstance(reply["error"]["code"], int) and isinstance(reply["error"]["message"], str)
        assert isinstance(reply["error"]["data"]["kind"], str)


@pytest.mark.slow
def test_bus_survives_random_input(make_bus, make_client):
    bus = make_bus(max_message_bytes=CAP, heartbeat_interval=0.05)
    bus.register("echo", lambda params, call: params)
    bus.register("obj", lambda params, call: sorted(params), params="object")
    bus.register("arr", lambda params, call: len(params), params="array")

    def fail(params, call):
        raise RpcError.validation("nope", params)

    def crash(params, call):
        raise ZeroDivisionError("boom")

    bus.register("fail", fail)
    bus.register("crash", crash)
    client = make_client(bus.endpoints, max_message_bytes=CAP)
    ctx = zmq.Context()
    dealer = ctx.socket(zmq.DEALER)
    dealer.linger = 0
    dealer.connect(bus.endpoints.rpc)
    replies = {"n": 0}

    def drain() -> None:
        while True:
            try:
                frames = dealer.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            _check_reply(frames)
            replies["n"] += 1

    sent = {"n": 0}

    @settings(
        max_examples=3000,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(frames_strategy)
    def fuzz(frames: list[bytes]) -> None:
        dealer.send_multipart(frames)
        sent["n"] += 1
        drain()
        if sent["n"] % 500 == 0:
            assert client.ping(timeout=5)["status"] == "ok"

    try:
        fuzz()
        assert client.ping(timeout=5)["status"] == "ok"
        assert client.call("echo", {"still": "alive"}) == {"still": "alive"}
        # every message that could be answered was answered with a valid reply
        dealer.send_multipart([b"", P.encode_request("final", "instance.ping")])
        while True:
            assert dealer.poll(5000), "bus stopped answering the raw dealer"
            frames = dealer.recv_multipart()
            _check_reply(frames)
            replies["n"] += 1
            last = json.loads(frames[-1])
            if isinstance(last, dict) and last.get("id") == "final":
                break
        assert bus.running
        stats = bus.stats()
        assert stats["malformed"] > 0 and stats["errors"] > 0
        # the fuzzer's own dealer got answers, and no more than the bus sent in all
        assert 0 < replies["n"] <= stats["replies"] + stats["errors"]
    finally:
        dealer.close(linger=0)
        ctx.term()
