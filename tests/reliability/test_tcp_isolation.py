"""tcp transport: another workdir on our derived ports, and clients without the credentials."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest
import zmq
from reliability_kit import db_rows, primary_record

from pando_core.runtime.endpoints import derived_ports, tcp_port_free
from tests.support.waiting import hold_for

pytestmark = pytest.mark.reliability

TCP = {"transport": "tcp", "heartbeat_interval": 0.1}


def _colliding_workdir(parent: Path, target: tuple[int, int]) -> Path:
    """A new directory under *parent* whose derived ports equal *target* (FNV-1a brute force)."""
    real_parent = os.path.realpath(parent)
    for i in range(2_000_000):
        name = f"other-{i}"
        if derived_ports(os.path.join(real_parent, name)) == target:
            path = parent / name
            path.mkdir()
            return path
    pytest.fail("no colliding directory name found")


def _workdir_with_free_ports(tmp_path: Path) -> tuple[Path, tuple[int, int]]:
    for i in range(50):
        wd = tmp_path / f"ours-{i}"
        ports = derived_ports(os.path.realpath(wd))
        if all(tcp_port_free(p) for p in ports):
            wd.mkdir()
            return wd, ports
    pytest.fail("no workdir with free derived ports")


def _session_ids(workdir: Path) -> set[str]:
    return {row[0] for row in db_rows(workdir, "SELECT id FROM sessions")}


def test_other_workdirs_primary_on_our_derived_ports(cluster, tmp_path):
    ours, ports = _workdir_with_free_ports(tmp_path)
    theirs = _colliding_workdir(tmp_path, ports)
    assert derived_ports(os.path.realpath(theirs)) == ports and theirs != ours

    their_primary = cluster.spawn("theirs", config=TCP, workdir=theirs)
    ready = their_primary.wait("ready", 20)
    assert ready["role"] == "primary"
    assert (ready["endpoints"]["pub_port"], ready["endpoints"]["rpc_port"]) == ports  # they sit on our ports

    our_primary = cluster.spawn("ours", config=TCP, workdir=ours)
    ready = our_primary.wait("ready", 20)
    assert ready["role"] == "primary"
    our_ports = (ready["endpoints"]["pub_port"], ready["endpoints"]["rpc_port"])
    assert not set(our_ports) & set(ports), "our primary must fall back to free ports"
    assert primary_record(ours)["endpoints"]["rpc_port"] == our_ports[1]  # the actual ports are advertised

    our_secondary = cluster.spawn("ours-sec", "--write-once", config=TCP, workdir=ours)
    ready = our_secondary.wait("ready", 20)
    assert ready["role"] == "secondary" and ready["endpoints"]["rpc_port"] == our_ports[1]
    assert our_secondary.wait(lambda r: r["ev"] in ("ok", "fail"), 20)["ev"] == "ok"
    their_secondary = cluster.spawn("theirs-sec", "--write-once", config=TCP, workdir=theirs)
    assert their_secondary.wait("ready", 20)["role"] == "secondary"
    assert their_secondary.wait(lambda r: r["ev"] in ("ok", "fail"), 20)["ev"] == "ok"

    assert _session_ids(ours) == {"ours-sec-boot"}
    assert _session_ids(theirs) == {"theirs-sec-boot"}


def test_port_squatter_after_our_primary_died_gets_no_writes(cluster, tmp_path):
    """Our primary dies; another workdir's primary grabs the freed derived ports; our secondary's
    sockets reconnect there by themselves, but the CURVE server key is pinned: our write waits
    for *our* next primary instead of landing in their database."""
    ours, ports = _workdir_with_free_ports(tmp_path)
    theirs = _colliding_workdir(tmp_path, ports)
    first = cluster.spawn("ours-1", config=TCP, workdir=ours)
    ready = first.wait("ready", 20)
    assert (ready["endpoints"]["pub_port"], ready["endpoints"]["rpc_port"]) == ports
    follower = cluster.spawn("ours-sec", "--no-failover", config={**TCP, "write_timeout": 30}, workdir=ours)
    assert follower.wait("ready", 20)["role"] == "secondary"
    assert follower.command(op="write", sid="before")["ok"]

    first.kill()
    first.reap()
    squatter = cluster.spawn("theirs", config=TCP, workdir=theirs)
    ready = squatter.wait("ready", 20)
    assert (ready["endpoints"]["pub_port"], ready["endpoints"]["rpc_port"]) == ports

    mark = follower.mark()
    follower.send(op="write", sid="after", tag="after")
    # while only the squatter listens on those ports, the write goes nowhere
    hold_for(
        lambda: not any(r.get("tag") == "after" for r in follower.events("reply"))
        and "after" not in _session_ids(theirs),
        1.0,
        "the write going nowhere while only the squatter listens",
    )

    second = cluster.spawn("ours-2", config=TCP, workdir=ours)
    ready = second.wait("ready", 20)
    assert ready["role"] == "primary" and ready["epoch"] == 2
    reply = follower.wait(
        lambda r: r.get("tag") == "after", 30, mark, what="the write to reach our new primary"
    )
    assert reply["ok"], reply
    assert _session_ids(ours) == {"before", "after"}
    assert _session_ids(theirs) == set()


def _raw_call(
    endpoint: str, request: dict, *, curve: tuple[bytes, bytes, bytes] | None, wait: float
) -> dict | None:
    """One request from a bare DEALER (optionally with CURVE keys); None if no reply within *wait*."""
    ctx = zmq.Context()
    dealer = ctx.socket(zmq.DEALER)
    dealer.linger = 0
    if curve is not None:
        server_public, public, secret = curve
        dealer.curve_serverkey = server_public
        dealer.curve_publickey = public
        dealer.curve_secretkey = secret
    try:
        dealer.connect(endpoint)
        dealer.send_multipart([b"", json.dumps(request).encode()])
        if dealer.poll(int(wait * 1000), zmq.POLLIN):
            return json.loads(dealer.recv_multipart()[-1])
        return None
    finally:
        dealer.close(0)
        ctx.term()


def _raw_events(endpoint: str, *, curve: tuple[bytes, bytes, bytes] | None, wait: float) -> list[bytes]:
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    if curve is not None:
        sub.curve_serverkey, sub.curve_publickey, sub.curve_secretkey = curve
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    frames = []
    try:
        sub.connect(endpoint)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not frames:
            if sub.poll(50, zmq.POLLIN):
                frames.append(sub.recv())
        return frames
    finally:
        sub.close(0)
        ctx.term()


def test_clients_without_credentials_are_refused(cluster, workdir):
    primary = cluster.spawn("p", config=TCP)
    assert primary.wait("ready", 20)["role"] == "primary"
    record = primary_record(workdir)
    assert record["auth"]["mechanism"] == "curve"
    rpc, pub = record["endpoints"]["rpc"], record["endpoints"]["pub"]
    server_public = record["auth"]["server_public_key"].encode()
    keys = json.loads((workdir / ".pando" / "auth" / "client.key").read_text())
    good = (server_public, keys["public"].encode(), keys["secret"].encode())
    stranger_public, stranger_secret = zmq.curve_keypair()
    impostor_server, _ = zmq.curve_keypair()

    def write_request(n: int, sid: str) -> dict:
        params = {
            "method": "sessions.create",
            "params": {"id": sid, "title": "intruder"},
            "key": ["intruder", n],
        }
        return {"jsonrpc": "2.0", "id": f"r{n}", "method": "db.write", "params": params}

    # the window is generous compared with the positive controls below, which answer in ms
    assert _raw_call(rpc, write_request(1, "no-keys"), curve=None, wait=1.0) is None
    assert (
        _raw_call(
            rpc,
            write_request(2, "stranger"),
            curve=(server_public, stranger_public, stranger_secret),
            wait=1.0,
        )
        is None
    )
    assert (
        _raw_call(rpc, write_request(3, "bad-server"), curve=(impostor_server, *good[1:]), wait=1.0) is None
    )
    assert _raw_events(pub, curve=None, wait=0.5) == []  # heartbeats every 0.1 s, none readable
    assert _raw_events(pub, curve=(server_public, stranger_public, stranger_secret), wait=0.5) == []

    # positive controls: the same bare sockets with the workdir's keys work
    heard = _raw_events(pub, curve=good, wait=5.0)
    assert heard and heard[0].startswith(b"instance.heartbeat\0")
    reply = _raw_call(rpc, write_request(4, "legit"), curve=good, wait=5.0)
    assert reply is not None and reply["result"]["result"]["id"] == "legit", reply
    assert {row[0] for row in db_rows(workdir, "SELECT id FROM sessions")} == {"legit"}
    assert db_rows(workdir, "SELECT instance_id, seq FROM applied_writes") == [("intruder", 4)]

    # a plain tcp connection that sends garbage does not hurt the primary either
    with socket.create_connection(("127.0.0.1", record["endpoints"]["rpc_port"]), timeout=2) as s:
        s.sendall(b"\xff" * 64 + b"GET / HTTP/1.0\r\n\r\n")
    secondary = cluster.spawn("s", "--write-once", config=TCP)
    assert secondary.wait("ready", 20)["role"] == "secondary"
    assert secondary.wait(lambda r: r["ev"] in ("ok", "fail"), 20)["ev"] == "ok"
    assert primary.proc.poll() is None  # the primary is still alive
