from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterator

import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from pando_core.runtime.endpoints import (
    EndpointError,
    Endpoints,
    choose_endpoints,
    derived_ports,
    fnv1a_32,
    free_tcp_ports,
    ipc_socket_dir,
    tcp_port_free,
)
from pando_core.runtime.private_dir import ensure_private_dir

# spec/ipc.md §2
VECTORS = [
    ("a", 0xE40C292C, 42220, 42221),
    ("/", 0x2A0C975E, 48254, 48255),
    ("/tmp/workspace", 0xEE3233D9, 47481, 47482),
    ("/home/user/projects/my-project", 0x9C7AE0B7, 58615, 58616),
    ("", None, 56261, 56262),
]


@pytest.mark.parametrize(("path", "h", "pub", "rpc"), VECTORS)
def test_port_derivation_matches_spec_vectors(path, h, pub, rpc):
    if h is not None:
        assert fnv1a_32(path) == h
    assert derived_ports(path) == (pub, rpc)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, database=None)
@given(st.text())
def test_derived_ports_in_range_and_adjacent(path):
    pub, rpc = derived_ports(path)
    assert 40000 <= pub <= 59999
    assert rpc == pub + 1


def test_endpoints_dict_roundtrip_and_validation():
    tcp = Endpoints.tcp(45000, 45001)
    assert Endpoints.from_dict(tcp.to_dict()) == tcp
    ipc = Endpoints.ipc("/tmp/pando-x/abc")
    assert Endpoints.from_dict(ipc.to_dict()) == ipc
    bad = [
        {"transport": "tcp", "pub": "tcp://0.0.0.0:1", "rpc": "tcp://127.0.0.1:2"},  # not loopback
        {"transport": "tcp", "pub": "tcp://127.0.0.1:70000", "rpc": "tcp://127.0.0.1:2"},
        {"transport": "ipc", "pub": "ipc://relative/pub", "rpc": "ipc:///tmp/rpc"},
        {"transport": "ipc", "pub": "ipc:///" + "x" * 200, "rpc": "ipc:///tmp/rpc"},
        {"transport": "udp", "pub": "a", "rpc": "b"},
        {"transport": "tcp", "pub": "tcp://127.0.0.1:5", "rpc": "tcp://127.0.0.1:5"},
        {"transport": "tcp", "pub": 1, "rpc": None},
        "not a mapping",
    ]
    for d in bad:
        with pytest.raises(EndpointError):
            Endpoints.from_dict(d)


@pytest.mark.skipif(not zmq.has("ipc"), reason="no ipc transport")
def test_auto_prefers_ipc_in_private_dir(tmp_path):
    ep = choose_endpoints(str(tmp_path))
    assert ep.transport == "ipc"
    directory = os.path.dirname(ep.pub.removeprefix("ipc://"))
    assert directory == ipc_socket_dir(str(tmp_path))
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.dirname(directory)).st_mode) == 0o700
    # a symlinked alias of the same directory maps to the same sockets
    alias = tmp_path.parent / (tmp_path.name + "-alias")
    alias.symlink_to(tmp_path)
    assert choose_endpoints(str(alias)) == ep


def test_ipc_falls_back_to_tcp_when_path_too_long(tmp_path):
    long_root = str(tmp_path / ("r" * (zmq.IPC_PATH_MAX_LEN + 10)))
    ep = choose_endpoints(str(tmp_path), runtime_dir=long_root)
    assert ep.transport == "tcp"
    assert ep.pub == f"tcp://127.0.0.1:{ep.pub_port}" and ep.rpc_port is not None
    assert not os.path.exists(long_root)  # nothing created for the rejected choice
    with pytest.raises(EndpointError, match="exceeds"):
        choose_endpoints(str(tmp_path), prefer="ipc", runtime_dir=long_root)


def test_ipc_refuses_foreign_or_non_directory_runtime_dir(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    assert choose_endpoints(str(tmp_path), runtime_dir=str(not_a_dir)).transport == "tcp"
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    ensure_private_dir(str(loose), EndpointError)
    assert stat.S_IMODE(os.stat(loose).st_mode) == 0o700
    if os.getuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 65534, 65534)
        with pytest.raises(EndpointError, match="owned by uid"):
            ensure_private_dir(str(foreign), EndpointError)


@contextlib.contextmanager
def _squatter(port: int = 0) -> Iterator[int]:
    """Someone else listening on 127.0.0.1:*port* (0: any free port); yields the port taken."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT leftover must not matter
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield sock.getsockname()[1]
    finally:
        sock.close()


def _free_derived_workdir(tmp_path) -> str:
    for i in range(200):
        wd = str(tmp_path / f"w{i}")
        pub, rpc = derived_ports(os.path.realpath(wd))
        if tcp_port_free(pub) and tcp_port_free(rpc):
            return wd
    pytest.skip("no workdir with free derived ports found")


def test_tcp_uses_derived_ports_when_free(tmp_path):
    wd = _free_derived_workdir(tmp_path)
    ep = choose_endpoints(wd, prefer="tcp")
    assert (ep.pub_port, ep.rpc_port) == derived_ports(os.path.realpath(wd))


@pytest.mark.parametrize("which", [0, 1])
def test_tcp_falls_back_to_free_ports_when_derived_taken(tmp_path, which):
    wd = _free_derived_workdir(tmp_path)
    derived = derived_ports(os.path.realpath(wd))
    with _squatter(derived[which]):
        ep = choose_endpoints(wd, prefer="tcp")
        assert ep.transport == "tcp"
        assert derived[which] not in (ep.pub_port, ep.rpc_port)
        assert ep.pub_port != ep.rpc_port
        assert tcp_port_free(ep.pub_port) and tcp_port_free(ep.rpc_port)


def test_bus_binds_a_free_port_when_requested_one_is_taken(make_bus, make_client):
    with _squatter() as taken:
        bus = make_bus(Endpoints.tcp(taken, free_tcp_ports(1)[0]))
        assert bus.endpoints.transport == "tcp"
        assert bus.endpoints.pub_port != taken
        assert bus.endpoints.pub == f"tcp://127.0.0.1:{bus.endpoints.pub_port}"
        client = make_client(bus.endpoints)
        assert client.ping()["instance_id"] == bus.instance_id


def test_bus_without_fallback_reports_bind_failure(make_bus):
    from pando_core.runtime.bus import BusError

    with _squatter() as taken, pytest.raises(BusError, match="cannot bind"):
        make_bus(Endpoints.tcp(taken, free_tcp_ports(1)[0]), port_fallback=False)
