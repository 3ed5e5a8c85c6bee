from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import stat
import threading
import time

import pytest

from pando_core.runtime.lock import (
    InstanceLock,
    LockError,
    PrimaryRecord,
    read_primary_record,
    write_primary_record,
)
from tests.support.waiting import hold_for

HOLDER = """
import sys
from pando_core.runtime.lock import InstanceLock
lock = InstanceLock(sys.argv[1])
print("ACQUIRED" if lock.try_acquire() else "BUSY", flush=True)
sys.stdin.readline()          # hold until told (or killed)
lock.release()
print("RELEASED", flush=True)
sys.stdin.readline()
"""


def _park(lock: InstanceLock, stop: threading.Event, result: dict) -> threading.Thread:
    def run() -> None:
        try:
            result["won"] = lock.acquire_blocking(stop)
        except BaseException as exc:  # pragma: no cover - reported by the assertion
            result["error"] = exc
        result["at"] = time.monotonic()

    t = threading.Thread(target=run, name="pando-test-parked", daemon=True)
    t.start()
    return t


def test_modes_0700_dir_and_0600_lock_file(tmp_path):
    pando = tmp_path / ".pando"
    lock = InstanceLock(pando)
    try:
        assert lock.try_acquire()
        assert stat.S_IMODE(os.stat(pando).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(pando / "ipc.lock").st_mode) == 0o600
        assert lock.try_acquire()  # idempotent for the holder
        assert lock.still_held()
    finally:
        lock.release()
    lock.release()  # idempotent
    assert (pando / "ipc.lock").exists()  # never unlinked


def test_existing_loose_pando_dir_is_tightened(tmp_path):
    pando = tmp_path / ".pando"
    pando.mkdir()
    os.chmod(pando, 0o755)
    lock = InstanceLock(pando)
    try:
        assert lock.try_acquire()
        assert stat.S_IMODE(os.stat(pando).st_mode) == 0o700
    finally:
        lock.release()


def test_second_process_cannot_acquire_while_first_holds(tmp_path, spawn, helpers):
    pando = str(tmp_path / ".pando")
    holder = spawn(HOLDER, pando)
    assert helpers.read_line(holder) == "ACQUIRED"
    mine = InstanceLock(pando)
    assert mine.try_acquire() is False
    assert mine.try_acquire() is False
    # and the other way round: while we hold it, a new process gets BUSY
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert helpers.read_line(holder) == "RELEASED"
    try:
        assert mine.try_acquire() is True
        other = spawn(HOLDER, pando)
        assert helpers.read_line(other) == "BUSY"
    finally:
        mine.release()


def test_two_objects_in_one_process_contend(tmp_path):
    a, b = InstanceLock(tmp_path / ".pando"), InstanceLock(tmp_path / ".pando")
    try:
        assert a.try_acquire()
        assert not b.try_acquire()
        a.release()
        assert b.try_acquire()
        assert not a.try_acquire()
    finally:
        a.release()
        b.release()


def test_sigkill_of_holder_lets_parked_acquire_win_promptly(tmp_path, spawn, helpers):
    pando = str(tmp_path / ".pando")
    holder = spawn(HOLDER, pando)
    assert helpers.read_line(holder) == "ACQUIRED"
    lock = InstanceLock(pando, poll_interval=0.01)
    stop, result = threading.Event(), {}
    t = _park(lock, stop, result)
    try:
        hold_for(lambda: t.is_alive() and "won" not in result, 0.05, "the acquire parked while the lock is held")
        killed_at = time.monotonic()
        os.kill(holder.pid, signal.SIGKILL)
        t.join(5)
        assert result.get("won") is True, result
        takeover = result["at"] - killed_at
        assert takeover < 0.5, f"takeover took {takeover:.3f}s"
        assert lock.held and lock.still_held()
    finally:
        stop.set()
        t.join(5)
        lock.release()


def test_parked_acquire_is_abandoned_on_stop(tmp_path):
    pando = tmp_path / ".pando"
    holder = InstanceLock(pando)
    assert holder.try_acquire()
    waiter = InstanceLock(pando)
    stop, result = threading.Event(), {}
    t = _park(waiter, stop, result)
    try:
        hold_for(lambda: t.is_alive() and "won" not in result, 0.05, "the acquire parked while the lock is held")
        time_stop = time.monotonic()
        stop.set()
        t.join(5)
        assert result.get("won") is False
        assert result["at"] - time_stop < 0.5
        assert not waiter.held
        assert waiter.acquire_blocking(threading.Event(), timeout=0.05) is False
    finally:
        holder.release()
        waiter.release()


def test_lock_errors_raise_instead_of_returning(tmp_path, monkeypatch):
    # .pando is a file
    (tmp_path / "f").write_text("x")
    with pytest.raises(LockError, match="not a directory"):
        InstanceLock(tmp_path / "f").try_acquire()

    # the filesystem refuses flock (NFS without locks, some FUSE): an error, never True/False
    def broken_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", broken_flock)
    lock = InstanceLock(tmp_path / ".pando")
    with pytest.raises(LockError, match="does not support file locks"):
        lock.try_acquire()
    with pytest.raises(LockError):
        lock.acquire_blocking(threading.Event(), timeout=0.1)

    def unsupported(fd, op):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", unsupported)
    with pytest.raises(LockError):
        InstanceLock(tmp_path / ".pando2").try_acquire()
    assert not lock.held


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to create a directory owned by someone else")
def test_pando_dir_owned_by_another_user_is_an_error(tmp_path):
    pando = tmp_path / ".pando"
    pando.mkdir(mode=0o700)
    os.chown(pando, 65534, 65534)
    with pytest.raises(LockError, match="owned by uid 65534"):
        InstanceLock(pando).try_acquire()


def test_permission_denied_is_an_error(tmp_path):
    if os.getuid() == 0:
        pytest.skip("root ignores file permissions")
    pando = tmp_path / ".pando"
    pando.mkdir(mode=0o700)
    (pando / "ipc.lock").write_text("")
    os.chmod(pando / "ipc.lock", 0o000)
    with pytest.raises(LockError, match="permission denied"):
        InstanceLock(pando).try_acquire()


def test_still_held_detects_replaced_lock_file(tmp_path):
    lock = InstanceLock(tmp_path / ".pando")
    try:
        assert lock.try_acquire() and lock.still_held()
        os.unlink(tmp_path / ".pando" / "ipc.lock")
        assert not lock.still_held()
    finally:
        lock.release()


def _record(epoch: int = 3) -> PrimaryRecord:
    return PrimaryRecord(
        instance_id="abc",
        pid=os.getpid(),
        epoch=epoch,
        endpoints={
            "transport": "tcp",
            "pub": "tcp://127.0.0.1:1",
            "rpc": "tcp://127.0.0.1:2",
            "pub_port": 1,
            "rpc_port": 2,
        },
        started_at=1_700_000_000_000,
        auth={"mechanism": "curve", "server_public_key": "x" * 40},
        workdir="/w",
    )


def test_primary_record_roundtrip_mode_and_no_temp_files(tmp_path):
    pando = tmp_path / ".pando"
    rec = _record()
    path = write_primary_record(pando, rec)
    assert read_primary_record(pando) == rec
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(pando)) == ["primary.json"]
    write_primary_record(pando, _record(epoch=4))
    assert read_primary_record(pando).epoch == 4


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b'{"instance_id": "x"',
        b"\xff\xfe",
        b"[]",
        b"null",
        b'{"instance_id": 1, "pid": 2}',
        b"x" * 100,
    ],
)
def test_read_primary_record_tolerates_garbage(tmp_path, content):
    pando = tmp_path / ".pando"
    assert read_primary_record(pando) is None  # missing
    pando.mkdir()
    (pando / "primary.json").write_bytes(content)
    assert read_primary_record(pando) is None
    # a good write replaces the corrupt file
    write_primary_record(pando, _record())
    assert read_primary_record(pando) == _record()


def test_unknown_fields_are_ignored(tmp_path):
    pando = tmp_path / ".pando"
    write_primary_record(pando, _record())
    d = json.loads((pando / "primary.json").read_text())
    d["future_field"] = {"x": 1}
    (pando / "primary.json").write_text(json.dumps(d))
    assert read_primary_record(pando) == _record()


def test_readers_never_see_a_partial_record(tmp_path):
    pando = tmp_path / ".pando"
    write_primary_record(pando, _record(0))
    stop = threading.Event()
    errors: list[str] = []

    def writer() -> None:
        epoch = 1
        while not stop.is_set():
            write_primary_record(pando, _record(epoch))
            epoch += 1

    t = threading.Thread(target=writer, name="pando-test-writer")
    t.start()
    try:
        last = -1
        for _ in range(2000):
            rec = read_primary_record(pando)
            if rec is None:
                errors.append("None")
            elif rec.epoch < last:
                errors.append(f"went back {last}->{rec.epoch}")
            else:
                last = rec.epoch
    finally:
        stop.set()
        t.join()
    assert not errors, errors[:5]
    assert last > 0
