"""Context files: the AGENTS.md family per directory from the git root to the workdir, the user's
global file, ``pando context``, and the order they reach the model in (real trees, a real git repo)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pando_core.agent.context_files import find_context_files
from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config

FAMILY = ["AGENTS.md", "PANDO.md", "CLAUDE.md", ".cursorrules"]


def pando(cwd, env, *args):
    return subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )


@pytest.fixture
def repo(tmp_path, pando_env):
    """repo/ (git) with AGENTS.md; repo/pkg/ with CLAUDE.md; repo/pkg/app/ (the workdir) with PANDO.md
    and CLAUDE.md; an AGENTS.md above the repository that must never be read; a global file."""
    above = tmp_path / "above"
    root = above / "repo"
    workdir = root / "pkg" / "app"
    workdir.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (above / "AGENTS.md").write_text("ABOVE the repository\n")
    (root / "AGENTS.md").write_text("ROOT rules\n")
    (root / "pkg" / "CLAUDE.md").write_text("PKG rules\n")
    (workdir / "PANDO.md").write_text("APP pando rules\n")
    (workdir / "CLAUDE.md").write_text("APP claude rules (shadowed)\n")
    (workdir / ".cursorrules").write_text("CURSOR rules\n")
    global_dir = Path(pando_env["XDG_CONFIG_HOME"]) / "pando"
    global_dir.mkdir(parents=True)
    (global_dir / "AGENTS.md").write_text("GLOBAL rules\n")
    return workdir


def test_the_first_of_the_family_per_directory_from_the_root_down_plus_the_global_file(repo, pando_env):
    found = find_context_files(repo, FAMILY, env=pando_env)
    assert [(f.shown, f.rule) for f in found] == [
        ("~/.config/pando/AGENTS.md", "global"),
        ("../../AGENTS.md", "repository root"),
        ("../CLAUDE.md", "parent directory"),
        ("PANDO.md", "working directory"),
        (".cursorrules", "working directory (extra file)"),
    ]
    assert found[1].bytes == len("ROOT rules\n")
    # the order of [agent] context_files decides within a directory
    found = find_context_files(repo, ["CLAUDE.md", "PANDO.md"], env=pando_env, global_file="")
    assert [f.shown for f in found] == ["../CLAUDE.md", "CLAUDE.md"]


def test_outside_git_only_the_workdir_is_read(tmp_path, pando_env):
    workdir = tmp_path / "plain" / "dir"
    workdir.mkdir(parents=True)
    (tmp_path / "plain" / "AGENTS.md").write_text("parent\n")
    assert find_context_files(workdir, FAMILY, env=pando_env) == []
    (workdir / "CLAUDE.md").write_text("here\n")
    assert [(f.shown, f.rule) for f in find_context_files(workdir, FAMILY, env=pando_env)] == [("CLAUDE.md", "working directory")]


def test_a_claude_code_global_file_and_a_configured_one(tmp_path, pando_env):
    workdir = tmp_path / "w"
    workdir.mkdir()
    claude = Path(pando_env["HOME"]) / ".claude"
    claude.mkdir()
    (claude / "CLAUDE.md").write_text("claude global\n")
    assert [f.shown for f in find_context_files(workdir, FAMILY, env=pando_env)] == ["~/.claude/CLAUDE.md"]
    (tmp_path / "mine.md").write_text("mine\n")
    chosen = find_context_files(workdir, FAMILY, env=pando_env, global_file=str(tmp_path / "mine.md"))
    assert [f.path for f in chosen] == [tmp_path / "mine.md"]
    assert find_context_files(workdir, FAMILY, env=pando_env, global_file="") == []


def test_pando_context_lists_them_and_the_model_gets_them_root_first(repo, pando_env, model_server):
    listed = pando(repo, pando_env, "context", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["rule"] for r in rows] == [
        "global", "repository root", "parent directory", "working directory", "working directory (extra file)"
    ]
    assert rows[3] == {
        "path": str(repo / "PANDO.md"), "shown": "PANDO.md", "rule": "working directory",
        "bytes": len("APP pando rules\n"), "truncated": False,
    }
    text = pando(repo, pando_env, "context")
    assert text.returncode == 0 and "../../AGENTS.md" in text.stdout and "repository root" in text.stdout
    write_model_config(repo, model_server.base_url)
    model_server.script(Reply.text("ok"))
    result = pando(repo, pando_env, "run", "hi")
    assert result.returncode == 0, result.stderr
    system = model_server.requests[0]["messages"][0]["content"]
    order = [system.index(marker) for marker in ("GLOBAL", "ROOT", "PKG", "APP pando", "CURSOR")]
    assert order == sorted(order)
    assert "ABOVE the repository" not in system and "shadowed" not in system


def test_pando_context_with_nothing_to_read(tmp_path, pando_env):
    workdir = tmp_path / "empty"
    workdir.mkdir()
    result = pando(workdir, pando_env, "context")
    assert result.returncode == 0 and result.stdout.startswith("no context files")
    assert json.loads(pando(workdir, pando_env, "context", "--json").stdout) == []
