from __future__ import annotations

import concurrent.futures
import itertools
import json
import os
import random
import signal
import threading
import time

import pytest
import zmq

from pando_core.errors import NotFoundError
from pando_core.runtime import client as client_module
from pando_core.runtime import protocol as P
from pando_core.runtime.bus import BusClosed, CallContext
from pando_core.runtime.client import CallInterrupted, ClientClosed, RpcError, RpcTimeout
from pando_core.runtime.endpoints import Endpoints, free_tcp_ports


@pytest.fixture
def raw_dealer():
    ctx = zmq.Context()
    socks = []

    def make(endpoint: str) -> zmq.Socket:
        s = ctx.socket(zmq.DEALER)
        s.linger = 0
        s.rcvtimeo = 2000
        s.connect(endpoint)
        socks.append(s)
        return s

    yield make
    for s in socks:
        s.close(linger=0)
    ctx.term()


def test_ping_and_info(make_bus, make_client):
    bus = make_bus(instance_id="prim-1", epoch=7, metadata={"workdir": "/w"})
    client = make_client(bus.endpoints, "sec-1")
    before = P.now_ms()
    pong = client.ping()
    assert pong["status"] == "ok"
    assert (pong["instance_id"], pong["epoch"], pong["pid"]) == ("prim-1", 7, os.getpid())
    assert pong["ts"] >= before and pong["metadata"] == {"workdir": "/w"}
    info = client.call(P.METHOD_INFO)
    assert {"instance.ping", "instance.info"} <= set(info["methods"])
    assert info["endpoints"] == bus.endpoints.to_dict()


def test_handler_sees_call_context(make_bus, make_client):
    bus = make_bus()
    seen: list[CallContext] = []
    bus.register("ctx", lambda params, call: seen.append(call) or params)
    client = make_client(bus.endpoints, "sec-ctx")
    assert client.call("ctx", {"x": 1}, timeout=3) == {"x": 1}
    (call,) = seen
    assert call.method == "ctx" and call.instance_id == "sec-ctx"
    assert isinstance(call.request_id, str) and call.client_identity.startswith(b"c-sec-ctx-")
    assert 0 < call.remaining() <= 3
    assert "token" not in call.meta


def test_200_concurrent_calls_from_8_threads_are_matched(make_bus, make_client):
    bus = make_bus(workers=8)

    def slow_echo(params, call):
        time.sleep(random.random() * 0.004)  # shuffle completion order
        return {"echo": params["n"], "thread": params["t"]}

    bus.register("echo", slow_echo, params="object")
    client = make_client(bus.endpoints)
    results: dict[tuple[int, int], object] = {}
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for n in range(25):
                results[(t, n)] = client.call("echo", {"n": n, "t": t}, timeout=10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,), name=f"pando-test-{t}") for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 200
    assert all(v == {"echo": n, "thread": t} for (t, n), v in results.items())
    # and with call_async: many in flight at once from one thread
    futs = {n: client.call_async("echo", {"n": n, "t": -1}) for n in range(200)}
    assert all(f.result(10) == {"echo": n, "thread": -1} for n, f in futs.items())
    assert client.in_flight() == 0


def test_handler_returning_future_is_replied_later(make_bus, make_client, helpers):
    bus = make_bus()
    parked: list[tuple[concurrent.futures.Future, object]] = []

    def deferred(params, call):
        fut: concurrent.futures.Future = concurrent.futures.Future()
        parked.append((fut, params))
        return fut

    bus.register("deferred", deferred)
    client = make_client(bus.endpoints)
    ok = client.call_async("deferred", {"v": 1})
    bad = client.call_async("deferred", {"v": 2})
    helpers.wait_for(lambda: len(parked) == 2, what="handlers to park")
    assert not ok.done() and not bad.done()
    for fut, params in parked:  # complete from a foreign thread-ish context (the test thread)
        if params["v"] == 1:
            fut.set_result({"committed": True})
        else:
            fut.set_exception(RpcError.constraint("UNIQUE constraint failed", {"table": "sessions"}))
    assert ok.result(5) == {"committed": True}
    with pytest.raises(RpcError) as info:
        bad.result(5)
    assert info.value.kind == "constraint" and info.value.data == {"table": "sessions"}


def test_deferred_handler_answers_through_its_reply_once(make_bus, make_client, helpers):
    bus = make_bus()
    parked: list[tuple[object, object]] = []

    def hold(params, call, reply):
        if params.get("raise"):
            raise RpcError.invalid_params("refused at once")
        parked.append((reply, params))
        return "ignored"  # a deferred handler answers through its reply only

    bus.register("hold", hold, params="object", inline=True, deferred=True)
    client = make_client(bus.endpoints)
    ok = client.call_async("hold", {"v": 1})
    bad = client.call_async("hold", {"v": 2})
    helpers.wait_for(lambda: len(parked) == 2, what="handlers to hold their replies")
    assert not ok.done() and not bad.done()
    for reply, params in parked:
        if params["v"] == 1:
            threading.Thread(target=reply.result, args=({"committed": True},)).start()
        else:
            reply.error(RpcError.constraint("UNIQUE constraint failed", {"table": "sessions"}))
            reply.result({"too": "late"})  # a second answer is ignored
    assert ok.result(5) == {"committed": True}
    with pytest.raises(RpcError) as info:
        bad.result(5)
    assert info.value.kind == "constraint" and info.value.data == {"table": "sessions"}
    with pytest.raises(RpcError) as info:
        client.call("hold", {"raise": True}, timeout=5)
    assert info.value.kind == "invalid_params" and "refused at once" in info.value.message
    assert bus.stats()["replies"] == 1 and bus.stats()["errors"] == 2


def test_round_hooks_answer_a_burst_and_after_reply_hooks_run_once_it_is_sent(make_bus, make_client, helpers):
    bus = make_bus()
    held: list[object] = []
    log: list[tuple] = []

    def answer_held() -> None:
        log.append(("round", len(held)))
        while held:
            held.pop().result("done")

    def after_replies() -> None:
        queued_replies = sum(1 for item in list(bus._out) if item[0] == "rpc")
        log.append(("after", queued_replies))

    bus.register("hold", lambda params, call, reply: held.append(reply), inline=True, deferred=True)
    bus.add_round_hook(answer_held)
    bus.add_round_hook(after_replies, after_replies=True)
    client = make_client(bus.endpoints)
    futures = [client.call_async("hold", {"n": n}) for n in range(20)]
    assert [f.result(5) for f in futures] == ["done"] * 20
    helpers.wait_for(lambda: sum(n for kind, n in log if kind == "round") == 20, what="20 answered")
    rounds = [kind for kind, _ in log]
    assert rounds[0] == "round" and all(a != b for a, b in itertools.pairwise(rounds))  # alternating
    assert all(n == 0 for kind, n in log if kind == "after")  # the burst's replies were sent


@pytest.mark.parametrize("spin_seconds", [0.0, 0.0003])
def test_idle_hooks_run_when_the_bus_waits_again_after_requests(make_bus, make_client, helpers, spin_seconds):
    """After each burst of requests (and, when it spins, once the spin found no next one), never
    while idle: heartbeats alone do not run them."""
    bus = make_bus(spin_seconds=spin_seconds)
    handled: list[int] = []
    idles: list[int] = []  # requests handled when each idle hook ran
    bus.register("work", lambda params, call: handled.append(params["n"]) or "ok", inline=True)
    bus.add_idle_hook(lambda: idles.append(len(handled)))
    before = bus.stats()["events"]
    helpers.wait_for(lambda: bus.stats()["events"] >= before + 3, what="three heartbeats")
    assert idles == []
    client = make_client(bus.endpoints)
    for n in range(3):
        assert client.call("work", {"n": n}) == "ok"
        helpers.wait_for(lambda n=n: idles and idles[-1] == n + 1, what=f"the idle hook after request {n}")
    futures = [client.call_async("work", {"n": n}) for n in range(3, 23)]
    assert [f.result(5) for f in futures] == ["ok"] * 20
    helpers.wait_for(lambda: idles[-1] == 23, what="the idle hook after the burst")
    assert idles == sorted(idles) and len(idles) <= 3 + 20


def test_a_receive_round_ends_at_a_message_boundary_once_it_holds_enough_requests(make_bus):
    """Requests queued together form one round (one group commit on a primary) until it holds
    ``round_requests`` of them; a batch is never split. Real sockets, over inproc so that every
    message is queued once send returns."""
    bus = make_bus(start=False)
    bus.round_requests = 4
    seen: list[int] = []
    bus.register("hold", lambda params, call, reply: seen.append(params["n"]), inline=True, deferred=True)
    ctx = zmq.Context()
    router, dealer = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    try:
        router.bind("inproc://rounds")
        dealer.connect("inproc://rounds")

        def request(n: int) -> dict:
            return {"jsonrpc": "2.0", "id": f"r{n}", "method": "hold", "params": {"n": n}}

        messages = [
            [request(1), request(2)],
            [request(3)],
            request(4),
            request(5),
            [request(6), request(7)],
            [request(8), request(9)],
            request(10),
        ]
        for message in messages:
            dealer.send_multipart([b"", json.dumps(message).encode()])
        queued = zmq.Poller()
        queued.register(router, zmq.POLLIN)
        rounds = []
        while queued.poll(0):
            before = len(seen)
            bus._receive(router, queued)
            rounds.append(seen[before:])
        assert rounds == [[1, 2, 3, 4], [5, 6, 7, 8, 9], [10]]
    finally:
        dealer.close(0)
        router.close(0)
        ctx.term()


def test_timeouts_and_late_replies_are_dropped(make_bus, make_client, helpers):
    bus = make_bus()
    release = threading.Event()
    bus.register("block", lambda params, call: release.wait(10) and "late")
    bus.register("echo", lambda params, call: params)
    client = make_client(bus.endpoints)
    t0 = time.monotonic()
    with pytest.raises(RpcTimeout) as info:
        client.call("block", timeout=0.2)
    elapsed = time.monotonic() - t0
    assert 0.19 <= elapsed < 1.5
    assert info.value.sent is True and info.value.kind == "timeout"
    replies = bus.stats()["replies"]
    release.set()
    helpers.wait_for(lambda: bus.stats()["replies"] == replies + 1, what="the late reply to be sent")
    # the late reply waits on the socket the call used; the next call must not take it for its own
    assert client.call("echo", ["mine"]) == ["mine"]
    helpers.wait_for(lambda: client.stats()["late_replies"] == 1, what="the late reply to be dropped")
    assert client.in_flight() == 0


def test_the_client_sends_one_frame_per_request_and_takes_replies_without_a_delimiter(make_client):
    pub, rpc = free_tcp_ports(2)
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.linger = 0
    try:
        router.bind(f"tcp://127.0.0.1:{rpc}")
        client = make_client(Endpoints.tcp(pub, rpc))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            # through the client's I/O thread, then on a direct lane (a blocking call)
            for pending in (client.call_async("echo", {"n": 1}, timeout=5), pool.submit(client.call, "echo", {"n": 2}, 5)):
                assert router.poll(5000)
                frames = router.recv_multipart()
                assert len(frames) == 2  # routing id + the JSON: no empty delimiter
                request = json.loads(frames[1])
                answer = {"jsonrpc": "2.0", "id": request["id"], "result": request["params"]["n"]}
                router.send_multipart([frames[0], json.dumps(answer).encode()])
                assert pending.result(5) == request["params"]["n"]
    finally:
        router.close(0)
        ctx.term()


def test_timeout_without_primary_reports_not_sent(make_client):
    pub, rpc = free_tcp_ports(2)
    client = make_client(Endpoints.tcp(pub, rpc))
    with pytest.raises(RpcTimeout) as info:
        client.call("instance.ping", timeout=0.15)
    assert info.value.sent is False


def test_expired_requests_are_not_executed(make_bus, make_client, helpers):
    bus = make_bus(workers=1)
    gate = threading.Event()
    ran: list[str] = []
    bus.register("hold", lambda params, call: gate.wait(10))
    bus.register("record", lambda params, call: ran.append(params[0]))
    client = make_client(bus.endpoints)
    holding = client.call_async("hold", timeout=10)
    helpers.wait_for(lambda: bus.stats()["pending_requests"] == 1, what="worker to be busy")
    with pytest.raises(RpcTimeout):
        client.call("record", ["expired"], timeout=0.1)  # queued behind "hold", deadline passes
    gate.set()
    holding.result(5)
    assert client.call("record", ["fresh"]) is None
    assert ran == ["fresh"]


def test_error_kinds_are_preserved(make_bus, make_client):
    bus = make_bus()
    calls: list[object] = []

    def boom(params, call):
        calls.append(params)
        kind = params["kind"]
        if kind == "not_found":
            raise RpcError.not_found("no such session", {"id": "s1"})
        if kind == "custom":
            raise RpcError(kind="quota_exceeded", message="too many", data={"limit": 3})
        if kind == "validation":
            raise RpcError.validation("title empty")
        if kind == "core":  # the core's own errors keep their kind too
            raise NotFoundError("no such message")
        raise ValueError("bug in handler")

    bus.register("boom", boom, params="object")
    bus.register("unserialisable", lambda params, call: object())
    client = make_client(bus.endpoints)
    expect = {
        "not_found": (P.NOT_FOUND, "not_found", {"id": "s1"}),
        "custom": (P.APP_ERROR, "quota_exceeded", {"limit": 3}),
        "validation": (P.VALIDATION, "validation", None),
        "core": (P.NOT_FOUND, "not_found", None),
        "bug": (P.INTERNAL_ERROR, "internal", None),
    }
    for kind, (code, wire_kind, data) in expect.items():
        with pytest.raises(RpcError) as info:
            client.call("boom", {"kind": kind})
        assert (info.value.code, info.value.kind, info.value.data) == (code, wire_kind, data)
    with pytest.raises(RpcError) as info:
        client.call("nope")
    assert info.value.kind == "method_not_found" and info.value.code == -32601
    n = len(calls)
    with pytest.raises(RpcError) as info:
        client.call("boom", ["wrong", "type"])
    assert info.value.kind == "invalid_params" and len(calls) == n  # handler never ran
    with pytest.raises(RpcError) as info:
        client.call("unserialisable")
    assert info.value.kind == "internal"
    # the bus is still fine
    assert client.ping()["status"] == "ok"


def test_busy_bus_answers_unavailable(make_bus, make_client, helpers):
    bus = make_bus(workers=1, max_pending_requests=1)
    gate = threading.Event()
    bus.register("hold", lambda params, call: gate.wait(10))
    client = make_client(bus.endpoints)
    first = client.call_async("hold")
    helpers.wait_for(lambda: bus.stats()["pending_requests"] == 1, what="first request to be pending")
    with pytest.raises(RpcError) as info:
        client.call("hold")
    assert info.value.kind == "unavailable" and info.value.retryable
    gate.set()
    assert first.result(5) is True


def test_publish_subscribe_prefixes_and_seq_order(make_bus, make_client, helpers):
    bus = make_bus(heartbeat_interval=0)
    client = make_client(bus.endpoints)
    got: dict[str, list[P.Event]] = {"db.session.": [], "exact": [], "all": []}
    client.subscribe("db.session.", got["db.session."].append)
    client.subscribe(P.exact_topic("session.update"), got["exact"].append)
    helpers.sync_events(bus, client)
    client.subscribe("", got["all"].append)
    helpers.sync_events(bus, client)
    start = bus.last_seq
    topics = [
        "db.session.created",
        "db.message.created",
        "session.update",
        "session.updateX",
        "db.session.deleted",
    ]
    seqs = [bus.publish(t, {"i": i}) for i, t in enumerate(topics)]
    assert seqs == list(range(start + 1, start + 6))
    helpers.wait_for(lambda: len(got["all"]) >= 5, what="events")
    assert [e.topic for e in got["db.session."]] == ["db.session.created", "db.session.deleted"]
    assert [e.topic for e in got["exact"]] == ["session.update"]
    assert [e.seq for e in got["all"][-5:]] == seqs
    ev = got["all"][-1]
    assert (ev.instance_id, ev.epoch, ev.payload) == (bus.instance_id, bus.epoch, {"i": 4})

    # many threads publishing: one total order, received in seq order, nothing lost
    got["all"].clear()
    base = bus.last_seq

    def pub(t: int) -> None:
        for i in range(250):
            bus.publish(f"load.{t}", {"i": i})

    threads = [threading.Thread(target=pub, args=(t,), name=f"pando-test-pub-{t}") for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    helpers.wait_for(lambda: len(got["all"]) >= 2000, what="2000 events")
    seen = [e.seq for e in got["all"]]
    assert seen == list(range(base + 1, base + 2001))
    for t in range(8):  # per-thread order preserved
        assert [e.payload["i"] for e in got["all"] if e.topic == f"load.{t}"] == list(range(250))


def test_unsubscribe_and_callback_errors_do_not_stop_delivery(make_bus, make_client, helpers):
    bus = make_bus()
    client = make_client(bus.endpoints)
    good: list[P.Event] = []
    cancelled: list[P.Event] = []

    def bad(ev):
        raise RuntimeError("callback bug")

    client.subscribe("t.", bad)
    client.subscribe("t.", good.append)
    sub = client.subscribe("t.", cancelled.append)
    helpers.sync_events(bus, client)
    sub.cancel()
    sub.cancel()
    bus.publish("t.a", 1)
    bus.publish("t.b", 2)
    helpers.wait_for(lambda: len(good) == 2, what="events after a failing callback")
    assert [e.payload for e in good] == [1, 2] and cancelled == []


def test_heartbeat_seen(make_bus, make_client, helpers):
    bus = make_bus(heartbeat_interval=0.05, instance_id="hb-primary", epoch=4)
    client = make_client(bus.endpoints)
    beats: list[P.Event] = []
    client.subscribe(P.INSTANCE_HEARTBEAT, beats.append)
    helpers.wait_for(lambda: len(beats) >= 3, what="3 heartbeats")
    hb = client.last_heartbeat
    assert hb is not None and hb.instance_id == "hb-primary" and hb.epoch == 4
    assert hb.payload["pid"] == os.getpid() and hb.payload["interval_ms"] == 50
    assert client.last_heartbeat_at is not None and client.last_event_at >= client.last_heartbeat_at


def test_stop_never_hangs_and_is_idempotent(make_bus, make_client, helpers):
    bus = make_bus()
    gate = threading.Event()
    bus.register("hold", lambda params, call: gate.wait(30))
    clients = [make_client(bus.endpoints, f"s{i}") for i in range(3)]
    futs = [c.call_async("hold", timeout=30) for c in clients]
    helpers.wait_for(lambda: bus.stats()["pending_requests"] == 3, what="handlers to block")
    for i in range(100):
        bus.publish("spam", {"i": i})
    t0 = time.monotonic()
    bus.stop(timeout=2)
    assert time.monotonic() - t0 < 2.5
    bus.stop()
    assert not bus.running
    with pytest.raises(BusClosed):
        bus.publish("x", None)
    gate.set()
    # clients: pending calls fail fast on close
    t0 = time.monotonic()
    for c in clients:
        c.close()
        c.close()
    assert time.monotonic() - t0 < 2
    for f in futs:
        with pytest.raises(ClientClosed):
            f.result(1)
    with pytest.raises(ClientClosed):
        clients[0].call("instance.ping")


def test_bus_that_never_started_or_failed_stops_cleanly(make_bus):
    bus = make_bus(start=False)
    bus.publish("queued.before.start", None)
    bus.stop()
    bus.stop()


def test_shutdown_event_is_flushed_by_stop(make_bus, make_client, helpers):
    bus = make_bus()
    client = make_client(bus.endpoints)
    got: list[P.Event] = []
    client.subscribe(P.INSTANCE_SHUTDOWN, got.append)
    helpers.sync_events(bus, client)
    bus.publish(P.INSTANCE_SHUTDOWN, {"instance_id": bus.instance_id, "reason": "graceful shutdown"})
    bus.stop()
    helpers.wait_for(lambda: got, what="instance.shutdown")


def test_reconnect_to_a_new_bus_on_new_endpoints(make_bus, make_client, helpers):
    old = make_bus(instance_id="old")
    new = make_bus(instance_id="new", epoch=2)
    assert old.endpoints != new.endpoints
    gate = threading.Event()
    old.register("hold", lambda params, call: gate.wait(10))
    client = make_client(old.endpoints)
    got: list[P.Event] = []
    client.subscribe("evt.", got.append)
    assert client.ping()["instance_id"] == "old"
    try:
        in_flight = client.call_async("hold", timeout=3.0)
        helpers.wait_for(lambda: old.stats()["pending_requests"] == 1, what="call in flight")
        old.stop()
        client.reconnect(new.endpoints)
        assert client.endpoints == new.endpoints
        assert client.ping()["instance_id"] == "new"
        # its reply could only come on the old socket: it fails at once, resend is the caller's call
        with pytest.raises(CallInterrupted) as info:
            in_flight.result(1)
        assert info.value.sent is True and isinstance(info.value, RpcTimeout)
        helpers.wait_for(
            lambda: new.publish("evt.x", 1) and any(e.instance_id == "new" for e in got),
            what="events from the new bus",
        )
    finally:
        gate.set()
    client.close()


def test_calls_made_before_primary_exists_are_sent_when_it_appears(make_bus, make_client):
    pub, rpc = free_tcp_ports(2)
    endpoints = Endpoints.tcp(pub, rpc)
    client = make_client(endpoints)
    fut = client.call_async("instance.ping", timeout=10)
    bus = make_bus(endpoints, instance_id="late")
    assert fut.result(10)["instance_id"] == "late"
    assert bus.endpoints == endpoints


def test_call_from_io_thread_is_refused(make_bus, make_client):
    bus = make_bus()
    client = make_client(bus.endpoints)
    box: list[BaseException] = []
    done = threading.Event()

    def cb(fut):
        try:
            client.call("instance.ping")
        except BaseException as exc:
            box.append(exc)
        done.set()

    client.call_async("instance.ping").add_done_callback(cb)
    assert done.wait(5)
    assert isinstance(box[0], RuntimeError)


def test_oversized_requests_and_replies(make_bus, make_client, raw_dealer):
    bus = make_bus(max_message_bytes=4096)
    bus.register("big", lambda params, call: "x" * 10_000)
    bus.register("echo", lambda params, call: params)
    client = make_client(bus.endpoints, max_message_bytes=4096)
    with pytest.raises(RpcError) as info:
        client.call("echo", ["x" * 5000])
    assert info.value.kind == "too_large"  # refused locally
    with pytest.raises(RpcError) as info:
        client.call("big")
    assert info.value.kind == "too_large"  # reply capped by the bus
    dealer = raw_dealer(bus.endpoints.rpc)
    dealer.send_multipart([b"", P.encode_request("big-1", "echo", ["y" * 6000])])
    reply = json.loads(dealer.recv_multipart()[-1])
    assert reply["id"] == "big-1" and reply["error"]["data"]["kind"] == "too_large"
    assert client.ping()["status"] == "ok"


@pytest.mark.parametrize(
    ("frames", "expect"),
    [
        ([b"", b"not json"], (None, P.PARSE_ERROR)),
        ([b"", b"\xff\xfe"], (None, P.PARSE_ERROR)),
        ([b"", b"[]"], (None, P.INVALID_REQUEST)),  # an empty batch
        ([b"", b'"str"'], (None, P.INVALID_REQUEST)),
        ([b"", b'{"id":"a","method":"instance.ping"}'], ("a", P.INVALID_REQUEST)),
        ([b"", b'{"jsonrpc":"2.0","id":"b"}'], ("b", P.INVALID_REQUEST)),
        ([b"", b'{"jsonrpc":"2.0","id":{"x":1},"method":"instance.ping"}'], (None, P.INVALID_REQUEST)),
        ([b"", b'{"jsonrpc":"2.0","id":"c","method":"nope"}'], ("c", P.METHOD_NOT_FOUND)),
        ([b"", b'{"jsonrpc":"2.0","id":"d","method":"obj","params":[1]}'], ("d", P.INVALID_PARAMS)),
        ([b"", b'{"jsonrpc":"2.0","id":"e","method":"obj","params":5}'], ("e", P.INVALID_PARAMS)),
        ([b"x", b"y", b"{}"], (None, P.INVALID_REQUEST)),
        ([b'{"jsonrpc":"2.0","id":7,"method":"instance.ping"}'], (7, None)),  # no delimiter is fine
        ([b"", b'{"jsonrpc":"2.0","id":8,"method":"obj"}'], (8, None)),  # absent params -> {}
    ],
)
def test_bad_input_gets_json_rpc_errors(make_bus, raw_dealer, frames, expect):
    bus = make_bus()
    bus.register("obj", lambda params, call: params, params="object")
    dealer = raw_dealer(bus.endpoints.rpc)
    dealer.send_multipart(frames)
    reply = json.loads(dealer.recv_multipart()[-1])
    rid, code = expect
    assert reply["jsonrpc"] == "2.0" and reply["id"] == rid
    if code is None:
        assert "result" in reply
    else:
        assert reply["error"]["code"] == code and isinstance(reply["error"]["data"]["kind"], str)


def test_notifications_get_no_reply(make_bus, raw_dealer, make_client, helpers):
    bus = make_bus()
    got: list[object] = []
    bus.register("note", lambda params, call: got.append(params))
    dealer = raw_dealer(bus.endpoints.rpc)
    dealer.send_multipart([b"", b'{"jsonrpc":"2.0","method":"note","params":[1]}'])
    dealer.send_multipart([b"", b'{"jsonrpc":"2.0","method":"unknown"}'])
    dealer.send_multipart([b"", b'{"jsonrpc":"1","method":"note"}'])
    client = make_client(bus.endpoints)
    client.notify("note", [2])
    helpers.wait_for(lambda: len(got) == 2, what="notifications handled")
    dealer.send_multipart([b"", b'{"jsonrpc":"2.0","id":"after","method":"instance.ping"}'])
    assert json.loads(dealer.recv_multipart()[-1])["id"] == "after"  # the first reply is the ping's


def test_batch_answers_every_request_in_one_array(make_bus, raw_dealer):
    bus = make_bus()
    bus.register("obj", lambda params, call: params, params="object")
    noted: list[object] = []
    bus.register("note", lambda params, call: noted.append(params))
    dealer = raw_dealer(bus.endpoints.rpc)
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "instance.ping"},
        {"jsonrpc": "2.0", "method": "note", "params": [1]},  # a notification: handled, not answered
        {"jsonrpc": "2.0", "id": "b", "method": "nope"},
        {"jsonrpc": "2.0", "id": "c", "method": "obj", "params": {"k": 1}},
        {"jsonrpc": "2.0", "id": "d", "method": "obj", "params": [1]},
        5,
    ]
    dealer.send_multipart([b"", json.dumps(batch).encode()])
    reply = json.loads(dealer.recv_multipart()[-1])
    assert isinstance(reply, list) and len(reply) == 5
    by_id = {}
    for answer in reply:
        assert answer["jsonrpc"] == "2.0"
        by_id.setdefault(answer["id"], []).append(answer)
    assert by_id["a"][0]["result"]["status"] == "ok"
    assert by_id["b"][0]["error"]["code"] == P.METHOD_NOT_FOUND
    assert by_id["c"][0]["result"] == {"k": 1}
    assert by_id["d"][0]["error"]["code"] == P.INVALID_PARAMS
    assert by_id[None][0]["error"]["code"] == P.INVALID_REQUEST  # the 5
    assert noted == [[1]]
    assert bus.stats()["requests"] == 6


def test_batch_of_notifications_gets_no_reply_and_oversized_batches_are_refused(make_bus, raw_dealer, helpers):
    from pando_core.runtime.bus import MAX_BATCH

    bus = make_bus()
    noted: list[object] = []
    bus.register("note", lambda params, call: noted.append(params))
    dealer = raw_dealer(bus.endpoints.rpc)
    notes = [{"jsonrpc": "2.0", "method": "note", "params": [i]} for i in range(3)]
    dealer.send_multipart([b"", json.dumps(notes).encode()])
    helpers.wait_for(lambda: len(noted) == 3, what="batched notifications handled")
    too_many = [{"jsonrpc": "2.0", "id": i, "method": "instance.ping"} for i in range(MAX_BATCH + 1)]
    dealer.send_multipart([b"", json.dumps(too_many).encode()])
    reply = json.loads(dealer.recv_multipart()[-1])  # the first reply: nothing came for the notifications
    assert reply["id"] is None and reply["error"]["code"] == P.INVALID_REQUEST
    assert str(MAX_BATCH) in reply["error"]["message"]


def test_batch_reply_waits_for_deferred_answers(make_bus, raw_dealer):
    """A deferred handler answers later, from another thread: the array goes out only then."""
    bus = make_bus()
    held = []
    release = threading.Event()

    def later(params, call, reply):
        held.append(reply)
        if len(held) == 2:
            threading.Thread(target=lambda: (release.wait(10), [r.result("late") for r in held])).start()

    bus.register("later", later, deferred=True, inline=True)
    dealer = raw_dealer(bus.endpoints.rpc)
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "later"},
        {"jsonrpc": "2.0", "id": 2, "method": "instance.ping"},
        {"jsonrpc": "2.0", "id": 3, "method": "later"},
    ]
    dealer.send_multipart([b"", json.dumps(batch).encode()])
    assert not dealer.poll(200), "the batch was answered before its deferred requests"
    release.set()
    assert dealer.poll(10_000)
    reply = json.loads(dealer.recv_multipart()[-1])
    assert sorted(a["id"] for a in reply) == [1, 2, 3]
    assert [a["result"] for a in sorted(reply, key=lambda a: a["id"]) if a["id"] != 2] == ["late", "late"]


def _put_bus(make_bus, *, fail_many: bool = False):
    """A bus whose "put" method has a many handler; both routes say which one answered."""
    bus = make_bus()
    routes: dict[str, list] = {"one": [], "many": []}

    def one(params, call, reply):
        routes["one"].append(params.get("n"))
        reply.result({"n": params.get("n"), "route": "one"})

    def many(requests, call, answers):
        routes["many"].append([r.get("n") for r in requests])
        assert len(answers) == len(requests) and call.method == "put" and call.instance_id == "w1"
        for index, request in enumerate(requests):
            if request["n"] < 0:
                answers.error(index, RpcError.validation("negative", {"n": request["n"]}))
            elif not fail_many:
                answers.result(index, {"n": request["n"], "route": "many"})
                answers.result(index, "a second answer is ignored")
        if fail_many:
            raise RuntimeError("many handler broke")

    bus.register("put", one, params="object", inline=True, deferred=True, many=many)
    return bus, routes


def _put(n, rid=None, **meta):
    return {"jsonrpc": "2.0", "id": rid or f"p{n}", "method": "put", "params": {"n": n}, "meta": {"instance_id": "w1", **meta}}


def _exchange(dealer, message) -> dict:
    dealer.send_multipart([b"", json.dumps(message).encode()])
    return {answer["id"]: answer for answer in json.loads(dealer.recv_multipart()[-1])}


def test_a_many_handler_takes_a_uniform_batch_whole(make_bus, raw_dealer):
    bus, routes = _put_bus(make_bus)
    dealer = raw_dealer(bus.endpoints.rpc)
    answers = _exchange(dealer, [_put(1), _put(-2), _put(3)])
    assert routes == {"one": [], "many": [[1, -2, 3]]} and bus.stats()["batches_whole"] == 1
    assert answers["p1"]["result"] == {"n": 1, "route": "many"} and answers["p3"]["result"]["n"] == 3
    assert answers["p-2"]["error"]["data"] == {"kind": "validation", "n": -2}
    assert bus.stats()["replies"] == 2 and bus.stats()["errors"] == 1

    # anything else in the batch: request by request, through the single handler
    not_uniform = [
        [_put(4), {"jsonrpc": "2.0", "id": "ping", "method": "instance.ping"}],  # another method
        [_put(5), _put(6, timeout_ms=5000)],  # another meta
        [_put(7), {"jsonrpc": "2.0", "method": "put", "params": {"n": 8}, "meta": {"instance_id": "w1"}}],  # a notification
        [_put(9), {**_put(10), "params": [10]}],  # params not an object
    ]
    for message in not_uniform:
        dealer.send_multipart([b"", json.dumps(message).encode()])
        assert isinstance(json.loads(dealer.recv_multipart()[-1]), list)
    assert routes["many"] == [[1, -2, 3]] and routes["one"] == [4, 5, 6, 7, 8, 9]


def test_a_many_handler_that_raises_answers_the_rest_with_its_error(make_bus, raw_dealer):
    bus, routes = _put_bus(make_bus, fail_many=True)
    dealer = raw_dealer(bus.endpoints.rpc)
    answers = _exchange(dealer, [_put(-1), _put(2), _put(3)])
    assert routes["many"] == [[-1, 2, 3]]
    assert answers["p-1"]["error"]["data"]["kind"] == "validation"  # answered before the failure
    for rid in ("p2", "p3"):
        assert answers[rid]["error"]["code"] == P.INTERNAL_ERROR and "many handler broke" in answers[rid]["error"]["message"]
    # a batch whose deadline has passed is not handed over: every request times out
    answers = _exchange(dealer, [_put(4, timeout_ms=0), _put(5, timeout_ms=0)])
    assert {a["error"]["data"]["kind"] for a in answers.values()} == {"timeout"}
    assert routes["many"] == [[-1, 2, 3]]


def test_a_many_handler_needs_an_inline_deferred_object_method(make_bus):
    bus = make_bus(start=False)
    for options in ({"inline": True, "deferred": True}, {"params": "object", "deferred": True}, {"params": "object", "inline": True}):
        with pytest.raises(ValueError, match="many handler"):
            bus.register("put", lambda *a: None, many=lambda *a: None, **options)


def test_call_batch_returns_each_answer_in_order(make_bus, make_client):
    bus = make_bus(max_message_bytes=4096)
    bus.register("echo", lambda params, call: params)

    def fail(params, call):
        raise RpcError.validation("bad value", params)

    bus.register("fail", fail)
    client = make_client(bus.endpoints, max_message_bytes=4096)
    results = client.call_batch([("echo", [1]), ("fail", [2]), ("echo", {"x": "y"}), ("nope", None)], timeout=5)
    assert results[0] == [1] and results[2] == {"x": "y"}
    assert isinstance(results[1], RpcError) and results[1].kind == "validation"
    assert isinstance(results[3], RpcError) and results[3].kind == "method_not_found"
    assert client.call_batch([]) == []
    # one message over the cap is refused before it leaves; each request alone would fit
    with pytest.raises(RpcError) as info:
        client.call_batch([("echo", ["x" * 1500])] * 3, timeout=5)
    assert info.value.kind == "too_large"
    # a reply array over the bus's cap comes back as one refusal for the whole batch
    bus.register("big", lambda params, call: "x" * 1500)
    with pytest.raises(RpcError) as info:
        client.call_batch([("big", None)] * 3, timeout=5)
    assert info.value.kind == "too_large"
    assert client.call("echo", ["still fine"]) == ["still fine"]


def test_batch_requests_are_encoded_as_single_ones_are(make_bus, make_client):
    client = make_client(make_bus().endpoints)
    calls = [("db.write", {"text": 'é"\\x', "n": [1, 2.5, None]}), ("instance.ping", None), ("m", [1])]
    rids, data = client._encode_batch(calls, 5.0)
    items = json.loads(data)
    assert len(set(rids)) == 3
    for (method, params), rid, item in zip(calls, rids, items, strict=True):
        single = json.loads(P.encode_request(rid, method, params, item["meta"]))
        assert list(single.items()) == list(item.items())  # same keys, same order, same values
    assert items[0]["meta"]["instance_id"] == client.instance_id
    with pytest.raises(TypeError):
        client._encode_batch([("m", "not params")], 5.0)


BUS_PROCESS = """
import json, sys
from pando_core.runtime.bus import Bus
from pando_core.runtime.endpoints import choose_endpoints
bus = Bus(choose_endpoints(sys.argv[1], prefer=sys.argv[3]), sys.argv[2], int(sys.argv[4]), heartbeat_interval=0.05)
bus.register("echo", lambda params, call: params)
bus.start()
print(json.dumps(bus.endpoints.to_dict()), flush=True)
sys.stdin.readline()
bus.stop()
"""


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_cross_process_primary_killed_then_reconnect(tmp_path, spawn, helpers, make_client, transport):
    if transport == "ipc" and not zmq.has("ipc"):
        pytest.skip("no ipc")
    first = spawn(BUS_PROCESS, str(tmp_path / "a"), "proc-a", transport, "1")
    ep_a = Endpoints.from_dict(json.loads(helpers.read_line(first)))
    client = make_client(ep_a)
    beats: list[P.Event] = []
    client.subscribe(P.INSTANCE_HEARTBEAT, beats.append)
    assert client.call("echo", {"k": [1, 2]}) == {"k": [1, 2]}
    helpers.wait_for(lambda: beats and beats[-1].instance_id == "proc-a", what="heartbeat from proc-a")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(5)
    with pytest.raises(RpcTimeout):
        client.call("echo", [1], timeout=0.2)
    second = spawn(BUS_PROCESS, str(tmp_path / "b"), "proc-b", transport, "2")
    ep_b = Endpoints.from_dict(json.loads(helpers.read_line(second)))
    client.reconnect(ep_b)
    assert client.ping()["instance_id"] == "proc-b"
    helpers.wait_for(
        lambda: beats[-1].instance_id == "proc-b" and beats[-1].epoch == 2, what="heartbeat from proc-b"
    )
    second.stdin.write("\n")
    second.stdin.flush()
    assert second.wait(10) == 0


def test_stop_and_close_from_their_own_threads(make_bus, make_client, helpers):
    bus = make_bus()
    stopped = threading.Event()

    def stop_me(params, call):
        bus.stop()  # from a worker thread
        stopped.set()
        return "bye"

    bus.register("stop", stop_me)
    client = make_client(bus.endpoints)
    client.call_async("stop")
    assert stopped.wait(5) and not bus.running
    # close() from a future callback, i.e. on the client's own I/O thread
    other = make_bus()
    client2 = make_client(other.endpoints)
    closed = threading.Event()
    client2.call_async("instance.ping").add_done_callback(lambda f: (client2.close(), closed.set()))
    assert closed.wait(5) and client2.closed
    # close() from an event callback (dispatcher thread)
    client3 = make_client(other.endpoints)
    done = threading.Event()
    client3.subscribe(P.INSTANCE_HEARTBEAT, lambda ev: (client3.close(), done.set()))
    assert done.wait(5) and client3.closed


# -- direct lanes: a blocking call borrows a DEALER of the lane pool and sends and receives on the
# calling thread itself


def _blocking_call_in_thread(client, method: str, timeout: float):  # noqa: ANN001, ANN202
    outcome: dict[str, object] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            outcome["result"] = client.call(method, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc
        outcome["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_blocking_call_is_interrupted_at_once_by_reconnect(make_bus, make_client, helpers):
    old = make_bus(instance_id="old")
    new = make_bus(instance_id="new", epoch=2)
    gate = threading.Event()
    old.register("hold", lambda params, call: gate.wait(10))
    client = make_client(old.endpoints)
    try:
        thread, outcome = _blocking_call_in_thread(client, "hold", timeout=8.0)
        helpers.wait_for(lambda: old.stats()["pending_requests"] == 1, what="the call to reach the bus")
        assert client.in_flight() == 0  # it went by the direct lane, not the I/O thread
        client.reconnect(new.endpoints)
        thread.join(5)
        assert isinstance(outcome["error"], CallInterrupted) and outcome["error"].sent is True
        assert outcome["elapsed"] < 2.0
        # the lane works again, on the new primary
        assert client.call("instance.ping", timeout=2)["instance_id"] == "new"
    finally:
        gate.set()


def test_close_ends_a_blocking_call_at_once(make_bus, make_client, helpers):
    bus = make_bus()
    gate = threading.Event()
    bus.register("hold", lambda params, call: gate.wait(10))
    client = make_client(bus.endpoints)
    try:
        thread, outcome = _blocking_call_in_thread(client, "hold", timeout=8.0)
        helpers.wait_for(lambda: bus.stats()["pending_requests"] == 1, what="the call to reach the bus")
        started = time.monotonic()
        client.close()
        assert time.monotonic() - started < 3.0
        thread.join(5)
        assert isinstance(outcome["error"], ClientClosed)
        with pytest.raises(ClientClosed):
            client.call("instance.ping", timeout=1)
    finally:
        gate.set()


def test_concurrent_blocking_calls_use_the_lanes_then_the_io_thread(make_bus, make_client, monkeypatch):
    monkeypatch.setattr(client_module, "MAX_DIRECT_LANES", 3)  # 8 callers: 3 on lanes, the rest queued
    bus = make_bus()
    bus.register("echo", lambda params, call: params)
    client = make_client(bus.endpoints)
    wrong: list[tuple] = []

    def work(t: int) -> None:
        for i in range(200):
            got = client.call("echo", [t, i], timeout=10)
            if got != [t, i]:
                wrong.append((t, i, got))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert wrong == []
    stats = client.stats()
    assert stats["calls"] == stats["replies"] == 1600 and stats["in_flight"] == 0
    assert client._lanes_made == 3


def test_inline_subscriptions_run_on_the_io_thread_and_defer_keeps_order(make_bus, make_client, helpers):
    bus = make_bus()
    client = make_client(bus.endpoints)
    seen: list[tuple[str, str, int]] = []

    def inline(event: P.Event) -> None:
        seen.append(("inline", threading.current_thread().name, event.payload))
        if event.payload % 2 == 0:
            client.defer(lambda e: seen.append(("deferred", threading.current_thread().name, e.payload)), event)

    client.subscribe("evt.", lambda e: seen.append(("queued", threading.current_thread().name, e.payload)))
    client.subscribe("evt.", inline, inline=True)
    helpers.wait_for(lambda: bus.publish("evt.x", -2) and any(s[0] == "deferred" for s in seen), what="subscriptions")
    for i in range(10):
        bus.publish("evt.x", i)

    def count(kind: str) -> int:
        return sum(1 for s in seen if s[0] == kind and s[2] >= 0)  # warm-up events carry -2

    helpers.wait_for(lambda: count("deferred") == 5 and count("queued") == 10, what="the dispatched callbacks")
    assert {s[1] for s in seen if s[0] == "inline"} == {"pando-client-io"}
    assert {s[1] for s in seen if s[0] != "inline"} == {"pando-client-events"}
    # the dispatcher runs everything in the order the I/O thread handed it over: an inline callback
    # runs (and defers) before the same event is queued for the ordinary subscriptions
    dispatched = [(s[0], s[2]) for s in seen if s[0] != "inline" and s[2] >= 0]
    expected = [pair for i in range(10) for pair in ([("deferred", i)] if i % 2 == 0 else []) + [("queued", i)]]
    assert dispatched == expected


def test_change_events_are_numbered_and_heartbeats_carry_the_latest(make_bus, make_client, helpers):
    bus = make_bus(heartbeat_interval=0.05)
    client = make_client(bus.endpoints)
    changes: list[P.Event] = []
    beats: list[P.Event] = []
    client.subscribe("db.", changes.append)
    client.subscribe(P.INSTANCE_HEARTBEAT, beats.append)
    helpers.wait_for(lambda: beats, what="a heartbeat")
    assert beats[-1].payload["change_seq"] == 0 and bus.last_change_seq == 0
    bus.publish("session.update", {"i": 0})  # other topics take a seq, not a change_seq
    seqs = [bus.publish_change("db.sessions.insert", {"ids": [str(i)], "writer": "w"}) for i in range(3)]
    helpers.wait_for(lambda: len(changes) == 3, what="3 change events")
    assert [e.payload["change_seq"] for e in changes] == [1, 2, 3]
    assert [e.seq for e in changes] == seqs and changes[0].payload["ids"] == ["0"]
    assert bus.last_change_seq == 3
    seen = len(beats)
    helpers.wait_for(lambda: len(beats) > seen, what="the next heartbeat")
    assert beats[-1].payload["change_seq"] == 3
