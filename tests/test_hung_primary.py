"""A hung primary (SIGSTOPped, lock still held) is reported within the ping timeout, never waited
out (issue 18 #16): at start-up of a new pando, by ``pando status``, and by a secondary's prompt.
Real processes; the stopped primary is always continued and stopped in a ``finally``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import pexpect
import pytest

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config
from tests.support.primary import primary_holder

# the hint comes within [runtime] ping_timeout (2 s) of the check; this bounds it with room for a
# loaded 2-core machine (before the fix: 15 s at start-up, 30 s for a turn)
HINT_WITHIN_S = 8.0


def pando(workdir, env, *args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout,
    )


@contextmanager
def stopped(pid: int):
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.slow
def test_run_and_status_next_to_a_stopped_primary_fail_fast_with_the_hint(pando_workdir, pando_env, model_server):
    write_model_config(pando_workdir, model_server.base_url)
    with primary_holder(pando_workdir, pando_env) as holder:
        with stopped(holder.pid):
            started = time.monotonic()
            run = pando(pando_workdir, pando_env, "run", "hello")
            took = time.monotonic() - started
            assert run.returncode == 1, run.stderr
            assert took < HINT_WITHIN_S, f"pando run took {took:.1f}s to report the hung primary"
            lines = run.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("pando: error: the primary (pid")
            assert f"kill -CONT {holder.pid}" in lines[0]
            assert model_server.requests == [], "the turn reached the model although the primary is stopped"

            started = time.monotonic()
            status = pando(pando_workdir, pando_env, "status", "--json")
            took = time.monotonic() - started
            assert took < HINT_WITHIN_S, f"pando status took {took:.1f}s"
            assert status.returncode == 1
            data = json.loads(status.stdout)
            assert data["primary_state"] == "not_answering" and data["primary_pid"] == holder.pid
            assert f"kill -CONT {holder.pid}" in data["problem"]
        # continued: it answers again, and status says so
        assert json.loads(pando(pando_workdir, pando_env, "status", "--json").stdout)["running"] is True


@pytest.mark.slow
def test_a_secondary_prompt_with_a_stopped_primary_shows_the_hint_and_keeps_the_prompt(
    pando_workdir, pando_env, model_server
):
    write_model_config(pando_workdir, model_server.base_url)
    model_server.add_rule(contains="after", response=Reply.text("answered after the resume"))
    env = dict(pando_env, TERM="xterm", COLUMNS="100", LINES="40", PROMPT_TOOLKIT_NO_CPR="1", PYTHONIOENCODING="utf-8")
    with primary_holder(pando_workdir, pando_env) as holder:
        child = pexpect.spawn(
            sys.executable, ["-m", "pando_core", "--plugins", "none"], cwd=str(pando_workdir), env=env,
            encoding="utf-8", timeout=20, dimensions=(40, 100),
        )
        try:
            child.expect("pando \\(secondary\\) › ")
            with stopped(holder.pid):
                started = time.monotonic()
                child.send("hello while it is stopped\r")
                child.expect("does not answer", timeout=HINT_WITHIN_S)
                took = time.monotonic() - started
                child.expect(f"kill -CONT {holder.pid}")
                child.expect("pando \\(secondary\\) › ", timeout=HINT_WITHIN_S)
                assert took < HINT_WITHIN_S
            child.send("after the resume\r")
            child.expect("answered after the resume")
            child.expect("pando \\(secondary\\) › ")
            child.send("\x04")
            child.expect(pexpect.EOF)
        finally:
            if child.isalive():
                child.terminate(force=True)
    # the turn typed while the primary was stopped was never queued: only the later one is stored
    import sqlite3

    db = sqlite3.connect(f"file:{pando_workdir}/.pando/pando.db?mode=ro", uri=True)
    try:
        texts = [row[0] for row in db.execute("SELECT parts FROM messages WHERE role = 'user'")]
    finally:
        db.close()
    assert len(texts) == 1 and "after the resume" in texts[0]
