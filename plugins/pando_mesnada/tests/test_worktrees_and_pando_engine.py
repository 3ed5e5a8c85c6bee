"""Real git worktrees per task, and the real ``pando`` engine (this pando, headless) answering from
the scripted model server running as its own process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mesnada_testing import drive, ended

from pando_core.testing.pytest_plugin import write_model_config


def git(cwd, *args):
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_each_task_gets_a_worktree_and_branch_and_records_a_diff_stat(make_orchestrator, fake_engines, pando_workdir):
    git(pando_workdir, "init", "-q")
    (pando_workdir / ".gitignore").write_text(".pando/\n")
    (pando_workdir / "README").write_text("base\n")
    git(pando_workdir, "add", ".")
    git(pando_workdir, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    orchestrator = make_orchestrator(isolation="worktree")
    a = orchestrator.spawn({"prompt": "write:a.txt=from a\nsleep:0.3", "engine": "claude"})
    b = orchestrator.spawn({"prompt": "write:b.txt=from b\nsleep:0.3", "engine": "claude"})
    done_a, done_b = drive(orchestrator, ended(orchestrator, a["id"], b["id"]))
    for done, name in ((done_a, "a.txt"), (done_b, "b.txt")):
        assert done["status"] == "completed"
        assert done["branch"] == f"mesnada/{done['id']}"
        assert Path(done["worktree"]) == pando_workdir / ".pando/mesnada/worktrees" / done["id"]
        assert done["work_dir"] == done["worktree"]
        assert name in done["diff_stat"] and "1 file changed" in done["diff_stat"]
        assert git(pando_workdir, "show", f"{done['branch']}:{name}") == f"from {name[0]}"
    # the two agents never wrote in the same checkout, and the main one is untouched
    assert fake_engines.for_prompt("a.txt")["cwd"] != fake_engines.for_prompt("b.txt")["cwd"]
    assert not (pando_workdir / "a.txt").exists() and git(pando_workdir, "status", "--porcelain") == ""
    # worktree isolation per task too, with the default "none"
    plain = make_orchestrator().spawn({"prompt": "say:plain", "engine": "claude"})
    assert plain["worktree"] is None and plain["work_dir"] == str(pando_workdir)


def test_the_pando_engine_runs_this_pando_against_a_model_server(make_orchestrator, pando_workdir, tmp_path, pando_env):
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"rules": [{"contains": "ping the model", "response": {"text": "pong from the model"}}]}))
    port_file = tmp_path / "url"
    server = subprocess.Popen(
        [sys.executable, "-m", "pando_core.testing.model_server", "--script", str(script), "--port-file", str(port_file)],
        stdout=subprocess.DEVNULL, env=pando_env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        write_model_config(pando_workdir, port_file.read_text().strip())
        orchestrator = make_orchestrator()
        task = orchestrator.spawn({"prompt": "ping the model, please", "tags": ["real-pando"]})
        assert task["engine"] == "pando"
        (done,) = drive(orchestrator, ended(orchestrator, task["id"]), timeout=120)
        assert done["status"] == "completed", Path(done["log_file"]).read_text()
        assert "pong from the model" in done["output_tail"]
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
