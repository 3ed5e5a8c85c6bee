"""Lone surrogates (issue 19, item 5): what ``os.scandir`` gives for a non-UTF-8 file name.

The rule (``pando_core.text``): what the model reads shows an undecodable byte as ``\\xNN``;
between pando processes the text travels exactly. Through real turns of ``pando run`` against the
scripted model server, on a primary and on a secondary, and a secondary's message write."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config
from tests.support.primary import primary_holder

pytestmark = pytest.mark.timeout(120)

NAME = b"caf\xe9-notes.txt"  # Latin-1, not UTF-8: os.scandir gives "caf\udce9-notes.txt"


def _run(workdir, env, *args):
    return subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=90,
    )


def _tool_outputs(workdir, session_id) -> list[str]:
    db = sqlite3.connect(f"file:{workdir}/.pando/pando.db?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT parts FROM messages WHERE session_id = ? AND role = 'tool'", (session_id,)).fetchall()
    finally:
        db.close()
    return [json.dumps(json.loads(parts)) for (parts,) in rows]


def _turn_with_ls(model_server, workdir, env) -> None:
    with open(os.path.join(os.fsencode(workdir), NAME), "wb") as fh:
        fh.write(b"x\n")
    model_server.script(Reply.tool("ls", {}), Reply.text("listed"))
    result = _run(workdir, env, "run", "-f", "json", "list the files")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "success" and data["response"] == "listed", data
    # the model got the name with the byte escaped, as valid UTF-8 JSON
    sent = [m for m in model_server.requests[-1]["messages"] if m["role"] == "tool"][0]["content"]
    assert "caf\\xe9-notes.txt" in sent, sent
    stored = _tool_outputs(workdir, data["session_id"])
    assert any("caf\\\\xe9-notes.txt" in parts for parts in stored), stored


def test_ls_of_an_undecodable_name_in_a_turn_on_the_primary(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url)
    _turn_with_ls(model_server, pando_workdir, pando_env)


def test_ls_of_an_undecodable_name_in_a_turn_on_a_secondary(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url)
    with primary_holder(pando_workdir, pando_env) as holder:
        assert holder.role == "primary"
        _turn_with_ls(model_server, pando_workdir, pando_env)


_WRITE_MESSAGE = (
    "import json, sys\n"
    "from pando_core.runtime import bootstrap\n"
    "rt = bootstrap(sys.argv[1])\n"
    "sid = rt.store.sessions.create(title='s')['id']\n"
    "rt.store.messages.create(session_id=sid, role='user', parts=[{'type': 'text', 'text': 'caf\\udce9 \\ud800'}])\n"
    "print(json.dumps({'role': rt.role, 'session': sid}), flush=True)\n"
    "rt.cleanup()\n"
)


def test_a_secondary_stores_a_message_with_a_surrogate_as_the_primary_does(pando_workdir, pando_env):
    def write() -> dict:
        done = subprocess.run(
            [sys.executable, "-c", _WRITE_MESSAGE, str(pando_workdir)],
            env=pando_env, capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    alone = write()
    assert alone["role"] == "primary"
    with primary_holder(pando_workdir, pando_env):
        proxied = write()
    assert proxied["role"] == "secondary"
    db = sqlite3.connect(f"file:{pando_workdir}/.pando/pando.db?mode=ro", uri=True)
    try:
        stored = {
            sid: parts
            for sid, parts in db.execute("SELECT session_id, parts FROM messages").fetchall()
        }
    finally:
        db.close()
    assert stored[proxied["session"]] == stored[alone["session"]]
    assert json.loads(stored[proxied["session"]])[0]["text"] == "caf\udce9 \ud800"
