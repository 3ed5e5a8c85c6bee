"""Issue 18 #19, the small ones: `pando models --help` keeps `[agent]`, a piped prompt's session
title is one line, the restore hint names the `--delete-added` option, and a primary leaves no
empty ipc socket folder behind at a clean exit. Real `pando` processes and a real runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pando_core.runtime import bootstrap
from pando_core.runtime.endpoints import workdir_key
from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config

PANDO = [sys.executable, "-m", "pando_core", "--plugins", "none"]


def pando(workdir, env, *args, input=None):
    return subprocess.run(
        [*PANDO, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=60, input=input
    )


def test_models_help_keeps_the_section_name_in_brackets(pando_workdir, pando_env):
    result = pando(pando_workdir, dict(pando_env, COLUMNS="200"), "models", "--help")
    assert result.returncode == 0, result.stderr
    assert "provider name (default: the one of [agent] model)" in result.stdout


def test_a_piped_prompt_makes_a_one_line_title(pando_workdir, pando_env, model_server):
    write_model_config(pando_workdir, model_server.base_url)
    model_server.add_rule(contains="first line", response=Reply.text("done"))
    run = pando(pando_workdir, pando_env, "run", "-", input="first line\n\tsecond  line\nthird\n")
    assert run.returncode == 0, run.stderr
    rows = json.loads(pando(pando_workdir, pando_env, "sessions", "list", "--json").stdout)
    assert [row["title"] for row in rows] == ["first line second line third"]


def test_restore_hint_names_the_delete_added_option(pando_workdir, pando_env):
    (pando_workdir / "kept.txt").write_text("v1\n")
    snap = json.loads(pando(pando_workdir, pando_env, "snapshots", "take", "--json", "before").stdout)
    (pando_workdir / "kept.txt").write_text("v2\n")
    (pando_workdir / "added.txt").write_text("new\n")
    restore = pando(pando_workdir, pando_env, "snapshots", "restore", snap["id"], "--yes")
    assert restore.returncode == 0, restore.stderr
    assert "keep     added.txt  (added since the snapshot (use --delete-added to remove))" in restore.stdout
    assert "delete_added" not in restore.stdout
    assert (pando_workdir / "kept.txt").read_text() == "v1\n"


def test_a_clean_exit_removes_the_primary_socket_folder(pando_workdir, pando_env):
    runtime = bootstrap(pando_workdir, config={"transport": "ipc"})
    folder = Path(runtime.bus.endpoints.rpc.removeprefix("ipc://")).parent
    assert folder.name == workdir_key(str(pando_workdir)) and folder.is_dir()
    assert str(folder).startswith(os.environ["XDG_RUNTIME_DIR"])  # the test's own runtime folder
    runtime.cleanup()
    assert not folder.exists(), f"{folder} was left behind: {sorted(os.listdir(folder))}"
    assert folder.parent.is_dir()  # the per-user folder stays: other directories' primaries use it
