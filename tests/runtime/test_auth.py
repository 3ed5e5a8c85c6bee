from __future__ import annotations

import os
import stat
import threading

import pytest
import zmq

from pando_core.runtime import protocol as P
from pando_core.runtime.auth import (
    AuthError,
    ClientAuth,
    client_auth,
    load_or_create_client_keypair,
    load_or_create_token,
    server_auth,
)
from pando_core.runtime.client import RpcTimeout
from pando_core.runtime.endpoints import choose_endpoints

needs_curve = pytest.mark.skipif(not zmq.has("curve"), reason="libzmq without CURVE")


def _tcp_bus(make_bus, tmp_path, auth):
    bus = make_bus(choose_endpoints(str(tmp_path), prefer="tcp"), auth=auth)
    counter = {"n": 0}
    lock = threading.Lock()

    def count(params, call):
        with lock:
            counter["n"] += 1
        return counter["n"]

    bus.register("count", count)
    return bus, counter


def _assert_locked_out(bus, client, control, counter, helpers):
    """*client* gets no reply and no event; *control*, a client with the credentials made alongside
    it, hears the events published meanwhile (so the window was long enough for them to arrive)."""
    events: list[P.Event] = []
    client.subscribe("", events.append)
    helpers.sync_events(bus, control)
    for _ in range(5):  # the two waits below give them time to arrive, if they could
        bus.publish("secret.stuff", {"token": "xyz"})
    with pytest.raises(RpcTimeout):
        client.call("count", timeout=0.3)
    with pytest.raises(RpcTimeout):
        client.ping(timeout=0.2)
    assert counter["n"] == 0  # the handler never ran
    assert events == [] and client.last_heartbeat is None


@needs_curve
def test_curve_client_with_credentials_works_and_files_are_private(make_bus, make_client, tmp_path, helpers):
    pando = tmp_path / ".pando"
    auth = server_auth(pando, "tcp")
    assert auth.mechanism == "curve"
    for name in ("server.key", "client.key"):
        assert stat.S_IMODE(os.stat(pando / "auth" / name).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(pando / "auth").st_mode) == 0o700
    bus, counter = _tcp_bus(make_bus, tmp_path, auth)
    info = auth.record_info()
    assert info["mechanism"] == "curve" and len(info["server_public_key"]) == 40
    client = make_client(bus.endpoints, auth=client_auth(pando, info))
    assert client.call("count") == 1
    got: list[P.Event] = []
    client.subscribe("db.", got.append)
    helpers.sync_events(bus, client)
    bus.publish("db.session.created", {"id": "s"})
    helpers.wait_for(lambda: got, what="encrypted event")
    assert got[0].payload == {"id": "s"}


@pytest.mark.slow
@needs_curve
def test_curve_rejects_clients_without_credentials(make_bus, make_client, tmp_path, helpers):
    pando = tmp_path / ".pando"
    auth = server_auth(pando, "tcp")
    bus, counter = _tcp_bus(make_bus, tmp_path, auth)

    def control():
        return make_client(bus.endpoints, "control", auth=client_auth(pando, auth.record_info()))

    # 1. plain (NULL mechanism) client
    _assert_locked_out(bus, make_client(bus.endpoints, "plain"), control(), counter, helpers)
    # 2. knows the server key but has its own, unregistered keypair
    public, secret = zmq.curve_keypair()
    stranger = ClientAuth(
        "curve", server_public=auth.server_public, client_public=public, client_secret=secret
    )
    _assert_locked_out(bus, make_client(bus.endpoints, "stranger", auth=stranger), control(), counter, helpers)
    # 3. has the client keypair but pins a different server key (e.g. a port squatter)
    good_client_pub, good_client_sec = load_or_create_client_keypair(pando)
    wrong_server = ClientAuth(
        "curve",
        server_public=zmq.curve_keypair()[0],
        client_public=good_client_pub,
        client_secret=good_client_sec,
    )
    _assert_locked_out(
        bus, make_client(bus.endpoints, "wrong-server", auth=wrong_server), control(), counter, helpers
    )
    # the legitimate client still works afterwards
    assert control().call("count") == 1


@needs_curve
def test_curve_reconnect_to_a_new_primary_with_a_new_server_key(make_bus, make_client, tmp_path):
    pando = tmp_path / ".pando"
    auth_a = server_auth(pando, "tcp")
    bus_a = make_bus(choose_endpoints(str(tmp_path / "a"), prefer="tcp"), auth=auth_a, instance_id="a")
    client = make_client(bus_a.endpoints, auth=client_auth(pando, auth_a.record_info()))
    assert client.ping()["instance_id"] == "a"
    bus_a.stop()
    auth_b = server_auth(pando, "tcp")  # promotion: fresh server keypair, same client keys
    assert auth_b.server_public != auth_a.server_public
    bus_b = make_bus(choose_endpoints(str(tmp_path / "b"), prefer="tcp"), auth=auth_b, instance_id="b")
    client.reconnect(bus_b.endpoints, client_auth(pando, auth_b.record_info()))
    assert client.ping()["instance_id"] == "b"


def test_token_mode(make_bus, make_client, tmp_path, helpers):
    pando = tmp_path / ".pando"
    auth = server_auth(pando, "tcp", mechanism="token")
    assert stat.S_IMODE(os.stat(pando / "auth" / "token").st_mode) == 0o600
    bus, counter = _tcp_bus(make_bus, tmp_path, auth)
    good = make_client(bus.endpoints, "good", auth=client_auth(pando, auth.record_info()))
    assert good.call("count") == 1
    got: list[P.Event] = []
    good.subscribe("db.", got.append)
    helpers.sync_events(bus, good)
    bus.publish("db.x.y", 1)
    helpers.wait_for(lambda: got, what="signed event")
    # no token: no reply, no handler; unsigned events are not accepted by it either
    bare = make_client(bus.endpoints, "bare")
    with pytest.raises(RpcTimeout):
        bare.call("count", timeout=0.3)
    wrong = make_client(bus.endpoints, "wrong", auth=ClientAuth("token", token=b"0" * 64))
    with pytest.raises(RpcTimeout):
        wrong.call("count", timeout=0.3)
    assert counter["n"] == 1
    # garbage without a token gets no reply either
    ctx = zmq.Context()
    try:
        dealer = ctx.socket(zmq.DEALER)
        dealer.linger = 0
        dealer.connect(bus.endpoints.rpc)
        dealer.send_multipart([b"", b"garbage"])
        dealer.send_multipart([b"", b'{"jsonrpc":"2.0","id":"x","method":"count"}'])
        assert dealer.poll(300) == 0
        dealer.close()
    finally:
        ctx.term()
    assert bus.stats()["unauthorized"] >= 3
    assert good.call("count") == 2


def test_ipc_uses_no_mechanism_and_a_private_directory(tmp_path):
    auth = server_auth(tmp_path / ".pando", "ipc")
    assert auth.mechanism == "none" and auth.record_info() == {"mechanism": "none"}
    assert client_auth(tmp_path / ".pando", auth.record_info()).mechanism == "none"


def test_credentials_are_created_once_and_checked(tmp_path):
    pando = tmp_path / ".pando"
    k1 = load_or_create_client_keypair(pando)
    assert load_or_create_client_keypair(pando) == k1
    t1 = load_or_create_token(pando)
    assert load_or_create_token(pando) == t1 and len(t1) == 64
    os.chmod(pando / "auth" / "client.key", 0o644)
    with pytest.raises(AuthError, match="0600"):
        load_or_create_client_keypair(pando)
    os.chmod(pando / "auth" / "client.key", 0o600)
    (pando / "auth" / "client.key").write_text("{}")
    with pytest.raises(AuthError, match="corrupt"):
        load_or_create_client_keypair(pando)
    with pytest.raises(AuthError, match="unknown auth mechanism"):
        client_auth(pando, {"mechanism": "kerberos"})
