"""``pando db status|migrate|copy`` on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pando_core.db import Database, core_component, migrate, open_local_store

PANDO = [sys.executable, "-m", "pando_core"]


def cli(workdir, env, *args, plugins="none", timeout=90):
    return subprocess.run(
        [*PANDO, "--plugins", plugins, *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc.stdout


def test_status_and_migrate_on_sqlite(pando_workdir, pando_env):
    before = json.loads(ok(cli(pando_workdir, pando_env, "db", "status", "--json")))
    core_versions = [m.version for m in core_component().migrations]
    assert before["dialect"] == "sqlite" and before["exists"] is False
    assert before["components"] == [
        {"component": "core", "applied": [], "latest": 0, "declared": max(core_versions), "pending": core_versions}
    ]
    assert not (pando_workdir / ".pando" / "pando.db").exists()  # status only looks

    first = json.loads(ok(cli(pando_workdir, pando_env, "db", "migrate", "--json")))
    assert [a[:2] for a in first["applied"]] == [["core", v] for v in core_versions]
    assert json.loads(ok(cli(pando_workdir, pando_env, "db", "migrate", "--json")))["applied"] == []
    text = ok(cli(pando_workdir, pando_env, "db", "status"))
    assert "Database: SQLite (.pando/pando.db)" in text and f"{'core':<14} {max(core_versions):>7} {max(core_versions):>8}  none" in text


def test_migrate_on_sqlite_leaves_a_running_primary_alone(pando_workdir, pando_env):
    from pando_core.runtime.lock import InstanceLock, ensure_pando_dir

    ensure_pando_dir(pando_workdir / ".pando")
    lock = InstanceLock(pando_workdir / ".pando")
    assert lock.try_acquire()  # as a running primary holds it
    try:
        proc = cli(pando_workdir, pando_env, "db", "migrate")
    finally:
        lock.release()
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "pando: error: a pando is running in this directory: its primary migrated the database at start; "
        "stop it to migrate here (or see `pando db status`)"
    ]


def _fill_sqlite(workdir: Path, components) -> dict:
    db = Database(workdir / ".pando" / "pando.db")
    try:
        migrate(db, components)
        store = open_local_store(db, components, "local")
        sessions = [store.sessions.create(title=f"s{i}") for i in range(30)]
        for session in sessions:
            for i in range(3):
                store.messages.create(session_id=session["id"], role="user", parts=[{"type": "text", "data": {"text": str(i)}}])
        store.files.record_change(session_id=sessions[0]["id"], path="a.py", before="old", after="new")
        fires = [store.cron.claim(job="nightly", kind="scheduled", instance="local", scheduled_at=60_000 * (i + 1)) for i in range(4)]
        store.mcp_catalog.replace_server(server="s", tools=[{"name": "echo"}], discovered_at=1)
        store.mcp_catalog.record_usage(tool_id="s/echo", called_at=5, duration_ms=1.0, success=True)
        return {"sessions": sessions, "max_fire": max(f["id"] for f in fires)}
    finally:
        db.dispose()


def test_copy_moves_sessions_messages_files_and_plugin_tables_once(pando_workdir, pando_env, postgres_url):
    from pando_cron.store import component as cron_component
    from pando_mcp.catalog import component as mcp_component

    from pando_core.db.postgres import PostgresDatabase

    components = [core_component(), cron_component(), mcp_component()]
    filled = _fill_sqlite(pando_workdir, components)
    plugins = "cron,mcp"

    first = json.loads(ok(cli(pando_workdir, pando_env, "db", "copy", "--to", postgres_url, "--json", plugins=plugins)))
    copied = {t["table"]: t["copied"] for t in first["tables"]}
    assert copied["sessions"] == 30 and copied["messages"] == 90 and copied["files"] == 2
    assert copied["cron_fires"] == 4 and copied["mcp_tools"] == 1 and copied["mcp_tool_usage"] == 1
    assert [t["table"] for t in first["tables"]].index("sessions") < [t["table"] for t in first["tables"]].index("messages")
    again = json.loads(ok(cli(pando_workdir, pando_env, "db", "copy", "--to", postgres_url, "--json", plugins=plugins)))
    assert again["copied"] == 0 and all(t["copied"] == 0 for t in again["tables"])  # idempotent
    assert "Copied 0 new rows into PostgreSQL" in ok(cli(pando_workdir, pando_env, "db", "copy", "--to", postgres_url, plugins=plugins))

    team_env = dict(pando_env, PANDO_DATABASE__URL=postgres_url)
    status = json.loads(ok(cli(pando_workdir, team_env, "db", "status", "--json", plugins=plugins)))
    assert status["dialect"] == "postgresql" and all(row["pending"] == [] for row in status["components"])
    listed = json.loads(ok(cli(pando_workdir, team_env, "sessions", "list", "--json", plugins=plugins)))
    assert {row["id"] for row in listed} == {s["id"] for s in filled["sessions"]}

    db = PostgresDatabase(postgres_url, writer_id="after-copy")
    try:
        store = open_local_store(db, components, "after-copy")
        session = store.sessions.create(title="written in team mode")
        assert session["seq"] > max(s["seq"] for s in filled["sessions"])  # sorts after the copied rows
        fire = store.cron.claim(job="other", kind="manual", instance="after-copy")
        assert fire["id"] > filled["max_fire"]  # the identity column moved past the copied ids
        messages = store.messages.list(session_id=filled["sessions"][0]["id"])
        assert [m["parts"][0]["data"]["text"] for m in messages] == ["0", "1", "2"]
    finally:
        db.dispose()


def test_copy_on_a_terminal_shows_a_progress_bar(pando_workdir, pando_env, postgres_url):
    import os
    import pty
    import select

    db = Database(pando_workdir / ".pando" / "pando.db")
    try:
        migrate(db, [core_component()])
        store = open_local_store(db, [core_component()], "local")
        with store.pipeline(batch_size=100) as pipe:
            for i in range(1200):
                pipe.sessions.create(title=f"s{i}")
    finally:
        db.dispose()
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*PANDO, "--plugins", "none", "db", "copy", "--to", postgres_url],
        cwd=pando_workdir, env=dict(pando_env, COLUMNS="100"), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=slave, text=True,
    )
    os.close(slave)
    screen = b""
    try:
        while True:  # bounded by the process: the pty closes when it exits
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        out = proc.communicate(timeout=60)[0]
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    text = screen.decode(errors="replace")
    assert "━" in text and "/1200" in text  # the bar, with rows done out of all rows
    assert "Copied 1200 new rows" in out


def test_copy_without_a_database_and_to_an_unreachable_server_say_so_in_one_line(pando_workdir, pando_env):
    from pando_core.testing.postgres import free_port

    proc = cli(pando_workdir, pando_env, "db", "copy", "--to", "postgresql+psycopg://u@127.0.0.1:1/x")
    assert proc.returncode == 2 and proc.stderr.strip().startswith("pando: error: nothing to copy:")
    ok(cli(pando_workdir, pando_env, "db", "migrate"))
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"
    proc = cli(pando_workdir, pando_env, "db", "copy", "--to", url)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"pando: error: cannot reach the PostgreSQL server at 127.0.0.1:{url.split(':')[-1]} (is it running, and is [database] url right?)"
    ]


@pytest.mark.parametrize("command", [["db", "status"], ["sessions", "list"]])
def test_team_mode_start_up_errors_are_one_line(pando_workdir, pando_env, postgres_server, command):
    env = dict(pando_env, PANDO_DATABASE__URL=postgres_server.url("no_such_database"))
    proc = cli(pando_workdir, env, *command)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("pando: error: the database 'no_such_database' does not exist on PostgreSQL at 127.0.0.1:")
