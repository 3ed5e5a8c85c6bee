"""A full disk under ``.pando/`` (issue 19, items 3 and 6), on a small tmpfs mounted for the test.

* every write error is one line naming the cause, with the kind ``no_space``: the primary's own,
  a secondary's (at once, not "the primary may be hung" after its write deadline), and
  ``pando sessions list`` in a new process;
* nothing acknowledged that was not committed;
* when the primary dies while the disk is full, the waiting secondaries keep retrying their
  promotion; ``pando status`` says why nobody is primary; once space is freed one of them takes
  over without any new process.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_kit import db_rows

from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(180)

NO_SPACE = "no space left on the device holding"


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 24 MiB tmpfs (root can mount one here; elsewhere the test cannot run)."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the disk-full tests need root (mount -t tmpfs) and CI runs them")
        pytest.skip("mounting a tmpfs needs root")
    mountpoint = Path(tempfile.mkdtemp(prefix="pando-full-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(mountpoint)], capture_output=True, text=True)
    if mounted.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)
        os.rmdir(mountpoint)


def _fill(disk: Path) -> Path:
    """Fill the device until it refuses one more byte; returns the filler to free it again."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):  # big chunks, then the last pages (bounded: 24 MiB)
            for _ in range(64 if size > 4096 else 4096):
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    finally:
        os.close(fd)
    return filler


def _pando(workdir: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=60,
    )


def test_a_full_disk_is_one_line_everywhere_and_promotion_is_retried_until_space_returns(cluster, small_disk, runtime_dir):
    workdir = small_disk / "wd"
    workdir.mkdir()
    config = {"heartbeat_interval": 0.1}
    primary = cluster.spawn("p", config=config, workdir=workdir)
    assert primary.wait("ready")["role"] == "primary"
    standbys = [cluster.spawn(name, config={**config, "write_timeout": 30}, workdir=workdir) for name in ("a", "b")]
    for standby in standbys:
        assert standby.wait("ready", 20)["role"] == "secondary"
    assert standbys[0].command(op="write", sid="before")["ok"]
    filler = _fill(small_disk)

    # writes fail with the cause, on the primary and through it; nothing unacknowledged is stored
    attempts: dict[str, dict] = {}
    for i in range(40):  # until the WAL's free room is used up (bounded)
        sid = f"full-p-{i}"
        attempts[sid] = primary.command(op="write", sid=sid, title="x" * 4000)
        if not attempts[sid]["ok"]:
            break
    refused = attempts[sid]
    assert not refused["ok"] and refused["kind"] == "no_space" and NO_SPACE in refused["error"], refused
    started = time.monotonic()
    proxied = standbys[0].command(op="write", sid="full-a", title="x" * 4000, wait_s=60)
    assert not proxied["ok"] and proxied["kind"] == "no_space" and NO_SPACE in proxied["error"], proxied
    assert time.monotonic() - started < 10, "the secondary resent a write the primary refused for lack of space"
    assert "may be hung" not in proxied["error"]
    stored = {sid for (sid,) in db_rows(workdir, "SELECT id FROM sessions")}
    for sid, reply in {**attempts, "full-a": proxied}.items():
        assert (sid in stored) == reply["ok"], (sid, reply)

    env = dict(cluster.env)
    listed = _pando(workdir, env, "sessions", "list")
    # read-only commands only observe (they write nothing), so listing works on a full disk; were
    # it to fail, the error would be one line
    assert listed.returncode == 0 or listed.stderr.count("\n") == 1, listed
    if listed.returncode != 0:
        assert listed.stderr.count("\n") == 1 and NO_SPACE in listed.stderr, listed.stderr

    # the primary dies while the disk is full: nobody can be promoted, and status says why
    primary.kill()
    primary.reap()
    wait_for(lambda: all(any("promotion failed" in line for line in s.stderr) for s in standbys), 20, "failed promotions")
    status = _pando(workdir, env, "status", "--json")
    assert status.returncode == 1, status
    report = json.loads(status.stdout)
    assert report["role"] is None and NO_SPACE in report["error"], report

    # space comes back: one of the waiting secondaries takes over, no new process needed
    os.unlink(filler)
    wait_for(lambda: any(s.count("role") for s in standbys), 20, "a retried promotion")
    promoted = next(s for s in standbys if s.count("role"))
    assert promoted.events("role")[-1]["role"] == "primary"
    other = next(s for s in standbys if s is not promoted)
    assert other.command(op="write", sid="after", wait_s=40)["ok"]
    assert promoted.command(op="write", sid="after-2")["ok"]
    assert {"before", "after", "after-2"} <= {sid for (sid,) in db_rows(workdir, "SELECT id FROM sessions")}

