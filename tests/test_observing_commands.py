"""Read-only commands observe: they never become the primary, never bump the epoch and never
create ``.pando/`` (issue 18 #15). Real ``pando`` processes; the primary is a real process too."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pando_core.runtime import bootstrap
from pando_core.runtime.lock import read_primary_record
from tests.support.primary import primary_holder

READ_ONLY_COMMANDS = [
    ["status"],
    ["status", "--json"],
    ["instances"],
    ["sessions", "list"],
    ["sessions", "list", "--json"],
    ["history"],
    ["snapshots", "list"],
    ["config", "show"],
    ["plugins"],
    ["tools"],
]


def pando(workdir, env, *args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.mark.slow
def test_read_only_commands_in_a_fresh_directory_create_nothing(pando_workdir, pando_env):
    for args in READ_ONLY_COMMANDS:
        result = pando(pando_workdir, pando_env, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert not (pando_workdir / ".pando").exists(), f"pando {' '.join(args)} created .pando/"
    for args in (["sessions", "show", "abc"], ["sessions", "export", "abc"]):
        result = pando(pando_workdir, pando_env, *args)
        assert result.returncode == 1 and result.stderr.strip() == "pando: error: session abc not found"
        assert not (pando_workdir / ".pando").exists()
    status = json.loads(pando(pando_workdir, pando_env, "status", "--json").stdout)
    assert status["role"] is None and status["running"] is False and status["primary_state"] == "none"
    assert status["primary_pid"] is None and status["instances"] == 0
    assert pando(pando_workdir, pando_env, "status").stdout.startswith("no pando is running here")


@pytest.mark.slow
def test_with_no_primary_running_commands_read_the_file_and_never_bump_the_epoch(pando_workdir, pando_env):
    runtime = bootstrap(pando_workdir)  # an earlier pando: it stored a session and exited
    runtime.store.sessions.create(title="kept from before")
    runtime.cleanup()
    record_path = pando_workdir / ".pando" / "primary.json"
    before = (read_primary_record(pando_workdir / ".pando").epoch, record_path.stat().st_mtime_ns)

    for _ in range(3):
        status = pando(pando_workdir, pando_env, "status", "--json")
        assert status.returncode == 0, status.stderr
        data = json.loads(status.stdout)
        assert data["role"] is None and data["primary_state"] == "none" and data["instances"] == 0
    rows = json.loads(pando(pando_workdir, pando_env, "sessions", "list", "--json", "--all").stdout)
    assert [row["title"] for row in rows] == ["kept from before"]
    shown = pando(pando_workdir, pando_env, "sessions", "show", rows[0]["id"][:8])
    assert shown.returncode == 0 and "# kept from before" in shown.stdout
    assert pando(pando_workdir, pando_env, "history").returncode == 0

    after = (read_primary_record(pando_workdir / ".pando").epoch, record_path.stat().st_mtime_ns)
    assert after == before, "a read-only command became the primary (epoch bumped or primary.json rewritten)"
    assert not list((pando_workdir / ".pando" / "instances").glob("*.json"))


@pytest.mark.slow
def test_status_next_to_a_running_primary_joins_it_without_being_counted(pando_workdir, pando_env):
    with primary_holder(pando_workdir, pando_env) as holder:
        for _ in range(2):
            result = pando(pando_workdir, pando_env, "status", "--json")
            assert result.returncode == 0, result.stderr
            data = json.loads(result.stdout)
            assert data["role"] == "secondary" and data["running"] is True
            assert data["primary_pid"] == holder.pid and data["primary_instance_id"] == holder.instance_id
            assert data["epoch"] == 1, "status bumped the epoch"
            # a heartbeat arrived (status waits up to one heartbeat interval for it)
            assert isinstance(data["last_heartbeat_age_s"], float) and 0 <= data["last_heartbeat_age_s"] < 5
            listed = json.loads(pando(pando_workdir, pando_env, "instances", "--json").stdout)
            assert data["instances"] == len(listed) == 1
        text = pando(pando_workdir, pando_env, "status").stdout
        assert f"primary:     pid {holder.pid}, epoch 1\n" in text and "instances:   1 running" in text
        assert "heartbeat:" in text
