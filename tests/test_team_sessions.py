"""Team mode with real ``pando`` processes: two "machines" (two working directories on different
paths, no shared ``.pando/``) on one PostgreSQL database share their sessions, and eight
instances started at once migrate the database once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config

pytest.importorskip("psycopg")

PANDO = [sys.executable, "-m", "pando_core", "--plugins", "none"]


def cli(workdir, env, *args, timeout=90):
    return subprocess.run(
        [*PANDO, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc.stdout


@pytest.fixture
def team_env(pando_env, postgres_url):
    return dict(pando_env, PANDO_DATABASE__URL=postgres_url)


def _machine(tmp_path, name, model_server):
    workdir = tmp_path / name
    workdir.mkdir(parents=True)
    write_model_config(workdir, model_server.base_url)
    return workdir


def test_a_session_written_on_one_machine_is_listed_and_continued_on_the_other(tmp_path, team_env, model_server):
    a = _machine(tmp_path, "machine-a", model_server)
    b = _machine(tmp_path, "far/away/machine-b", model_server)
    model_server.script(Reply.text("first answer"), Reply.text("second answer"))

    first = json.loads(ok(cli(a, team_env, "run", "-f", "json", "remember the word tangerine")))
    session_id = first["session_id"]

    listed = json.loads(ok(cli(b, team_env, "sessions", "list", "--json")))
    assert [(row["id"], row["messages"]) for row in listed] == [(session_id, 2)]

    second = json.loads(ok(cli(b, team_env, "run", "-f", "json", "-s", session_id[:8], "what was the word?")))
    assert second["session_id"] == session_id
    # the model was sent the whole conversation, written on the other machine
    sent = next(json.dumps(r["messages"]) for r in reversed(model_server.requests) if "what was the word?" in json.dumps(r))
    assert "remember the word tangerine" in sent and "first answer" in sent

    shown = ok(cli(a, team_env, "sessions", "show", session_id[:8]))
    assert "tangerine" in shown and "what was the word?" in shown and "second answer" in shown
    # nothing went to a local SQLite file on either machine
    assert not (a / ".pando" / "pando.db").exists() and not (b / ".pando" / "pando.db").exists()


def test_eight_instances_started_at_once_migrate_once(tmp_path, team_env, model_server, postgres_url):
    from pando_core.db import applied_migrations, core_component
    from pando_core.db.postgres import PostgresDatabase

    count = 8
    model_server.script(*[Reply.text("hello") for _ in range(count)])
    workdirs = [_machine(tmp_path, f"m{i}", model_server) for i in range(count)]
    procs = [
        subprocess.Popen(
            [*PANDO, "run", "-f", "json", f"hello from {i}"],
            cwd=workdir, env=team_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL,
        )
        for i, workdir in enumerate(workdirs)
    ]
    outcomes = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            outcomes.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    # all eight started, migrated (or found it done) and wrote: without the advisory lock some
    # would fail on "relation already exists" or a duplicate schema_migrations row
    assert [rc for rc, _, _ in outcomes] == [0] * count, [err for rc, _, err in outcomes if rc]
    db = PostgresDatabase(postgres_url)
    try:
        rows = applied_migrations(db)
        assert [(r["component"], r["version"]) for r in rows] == [("core", m.version) for m in core_component().migrations]
        with db.read() as tx:
            assert tx.raw.execute("SELECT count(*) FROM sessions").fetchone()[0] == count
    finally:
        db.dispose()


def test_a_secondary_writes_directly_while_its_local_primary_is_stopped_or_gone(pando_instance, pando_workdir, team_env):
    """Two instances in one directory: the local primary serves the bus but no one's writes."""
    import os
    import signal

    env = {"PANDO_DATABASE__URL": team_env["PANDO_DATABASE__URL"]}
    primary = pando_instance(None, env, pando_workdir)
    secondary = pando_instance(None, env, pando_workdir)
    assert (primary.info["role"], secondary.info["role"]) == ("primary", "secondary")
    os.kill(primary.pid, signal.SIGSTOP)  # hung: it could not apply a proxied write
    try:
        written = secondary.eval("result = app.store.sessions.create(title='while the primary is stopped')", timeout=10)
        secondary.eval("app.ensure_primary(); result = True", timeout=10)  # a turn may start: no ping needed
    finally:
        os.kill(primary.pid, signal.SIGCONT)
    assert primary.eval(f"result = app.store.sessions.get(id={written['id']!r})['title']") == "while the primary is stopped"
    primary.kill()
    secondary.wait_for("result = app.role", "primary", timeout=10)  # the bus moves here
    again = secondary.eval("result = app.store.sessions.create(title='after the failover')")
    assert again["seq"] > written["seq"]

