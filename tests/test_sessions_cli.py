"""`pando sessions` and `pando history` against a real database written by a real `pando run`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config
from tests.support.primary import primary_holder

PANDO = [sys.executable, "-m", "pando_core", "--plugins", "none"]


def cli(workdir, env, *args, timeout=60):
    return subprocess.run(
        [*PANDO, *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc.stdout


def without_ids(export: dict) -> dict:
    """An export with everything that legitimately changes on import removed."""
    session = {k: v for k, v in export["session"].items() if k not in ("id", "created_at", "updated_at")}
    messages = [
        {k: v for k, v in m.items() if k not in ("id", "created_at", "updated_at")}
        for m in export["messages"]
    ]
    return {"session": session, "messages": messages}


@pytest.fixture
def session_dir(pando_workdir, pando_env, model_server):
    """A workdir whose database holds one run that wrote notes.txt twice."""
    write_model_config(pando_workdir, model_server.base_url)
    model_server.script(
        Reply.tool("write", {"file_path": "notes.txt", "content": "one\n"}),
        Reply.tool("view", {"file_path": "notes.txt"}),
        Reply.tool("write", {"file_path": "notes.txt", "content": "two\n"}),
        Reply.text("done: notes.txt says two"),
    )
    run = json.loads(ok(cli(pando_workdir, pando_env, "run", "--yolo", "-f", "json", "write notes twice")))
    assert (pando_workdir / "notes.txt").read_text() == "two\n"
    return pando_workdir, run["session_id"]


@pytest.mark.slow
def test_list_show_rename_and_export_import_round_trip(session_dir, pando_env, tmp_path):
    workdir, session_id = session_dir
    prefix = session_id[:8]

    listing = ok(cli(workdir, pando_env, "sessions", "list"))
    assert prefix in listing and "write notes twice" in listing and "msgs" in listing

    assert "Renamed session" in ok(cli(workdir, pando_env, "sessions", "rename", prefix, "Notes", "work"))
    rows = json.loads(ok(cli(workdir, pando_env, "sessions", "list", "--json")))
    assert [(r["id"], r["title"], r["messages"]) for r in rows] == [(session_id, "Notes work", 8)]
    assert set(rows[0]) >= {"id", "title", "messages", "updated_at", "cost"}

    shown = ok(cli(workdir, pando_env, "sessions", "show", prefix))
    assert shown.startswith("# Notes work\n")
    assert "## User\n\nwrite notes twice" in shown
    assert "**Tool call** `write`" in shown and '"content": "two\\n"' in shown
    assert "**Result** `view`" in shown
    assert shown.rstrip().endswith("done: notes.txt says two")

    markdown = ok(cli(workdir, pando_env, "sessions", "export", prefix, "--format", "markdown"))
    assert markdown.startswith("# Notes work\n") and "done: notes.txt says two" in markdown

    exported = tmp_path / "session.json"
    ok(cli(workdir, pando_env, "sessions", "export", prefix, "--format", "json", "-o", str(exported)))
    original = json.loads(exported.read_text())
    assert original["format"] == "pando-session" and original["session"]["id"] == session_id
    assert [m["role"] for m in original["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]

    imported = json.loads(ok(cli(workdir, pando_env, "sessions", "import", str(exported), "--json")))
    assert imported["id"] != session_id
    assert (imported["title"], imported["messages"]) == ("Notes work", 8)
    again = json.loads(ok(cli(workdir, pando_env, "sessions", "export", imported["id"], "-F", "json")))
    assert without_ids(again) == without_ids(original)
    assert {m["id"] for m in again["messages"]}.isdisjoint({m["id"] for m in original["messages"]})


def long_export(count: int = 40) -> dict:
    """A session export of ``count`` alternating user/assistant text messages."""
    return {
        "format": "pando-session",
        "version": 1,
        "session": {"title": "Long chat", "prompt_tokens": 7},
        "messages": [
            {"id": f"m{i}", "role": ("user", "assistant")[i % 2], "parts": [{"type": "text", "data": {"text": f"turn {i}"}}]}
            for i in range(count)
        ],
    }


def test_import_sends_the_messages_in_pipeline_batches(make_app, monkeypatch):
    from pando_core.commands.sessions_cmd import import_session

    app = make_app()
    executor = app.store.executor
    batches: list[int] = []
    real = executor.run_writes
    monkeypatch.setattr(executor, "run_writes", lambda calls: batches.append(len(calls)) or real(calls))
    announced = []
    monkeypatch.setattr(app.events, "publish", lambda topic, payload: announced.append(topic))
    imported = import_session(app, long_export())
    assert batches == [16, 16, 8]  # 40 messages, 16 per batch: three writes, not forty
    assert announced.count("message.created") == 40
    assert [m["parts"][0]["data"]["text"] for m in app.messages.list(imported["id"])] == [f"turn {i}" for i in range(40)]


@pytest.mark.slow
def test_import_from_a_second_terminal_sends_messages_in_batches(pando_workdir, pando_env, tmp_path):
    """With another pando as the primary, the import is a secondary: its 40 messages reach the
    primary through a write pipeline, stored once each and in order."""
    export = long_export()
    source = tmp_path / "long.json"
    source.write_text(json.dumps(export))
    with primary_holder(pando_workdir, pando_env) as holder:
        assert holder.role == "primary"
        imported = json.loads(ok(cli(pando_workdir, pando_env, "sessions", "import", str(source), "--json")))
        assert (imported["title"], imported["messages"]) == ("Long chat", 40)
        again = json.loads(ok(cli(pando_workdir, pando_env, "sessions", "export", imported["id"], "-F", "json")))
    assert [m["parts"][0]["data"]["text"] for m in again["messages"]] == [f"turn {i}" for i in range(40)]
    with sqlite3.connect(pando_workdir / ".pando" / "pando.db") as db:
        # proxied: every message went with an idempotency key of the importing instance
        keyed = db.execute("SELECT COUNT(*) FROM applied_writes WHERE method = 'messages.create'").fetchone()[0]
    assert keyed == 40


@pytest.mark.slow
def test_history_and_delete(session_dir, pando_env):
    workdir, session_id = session_dir
    prefix = session_id[:8]

    history = json.loads(ok(cli(workdir, pando_env, "history", "--json")))
    assert [(h["session_id"], h["display_path"], h["versions"]) for h in history] == [
        (session_id, "notes.txt", ["initial", "v1", "v2"])
    ]
    diff = history[0]["diff"]
    assert "--- a/notes.txt (initial)" in diff and "+++ b/notes.txt (v2)" in diff
    assert "+two" in diff and "one" not in diff

    text = ok(cli(workdir, pando_env, "history", prefix))
    assert "notes.txt  (3 versions: initial → v2)" in text and "+two" in text

    refused = cli(workdir, pando_env, "sessions", "delete", prefix)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert "Deleted session" in ok(cli(workdir, pando_env, "sessions", "delete", prefix, "--yes"))
    db = sqlite3.connect(f"file:{workdir}/.pando/pando.db?mode=ro", uri=True)
    try:
        assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 0
    finally:
        db.close()
    missing = cli(workdir, pando_env, "sessions", "show", prefix)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_history_service_diff_shows_the_display_path_and_a_missing_final_newline(make_app, pando_workdir):
    app = make_app()
    session = app.sessions.create(title="diffs")
    path = str(pando_workdir / "a.txt")
    app.history.record_change(session["id"], path, "one\n", "one\ntwo")
    diff = app.history.diff(session["id"], path, "a.txt")
    assert "--- a/a.txt (initial)" in diff and "+++ b/a.txt (v1)" in diff
    assert diff.endswith("+two\n\\ No newline at end of file\n")
    assert f"--- a/{path} (initial)" in app.history.diff(session["id"], path)  # default: the stored path
    assert app.history.diff(session["id"], str(pando_workdir / "never.txt")) == ""
