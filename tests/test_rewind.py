"""Per-turn checkpoints and `pando rewind`, end to end: real `pando run` turns against the scripted
model server edit files in a real git repository (or a plain directory), then the real CLI rewinds
them. git's index, HEAD and stash must be exactly as before."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config


def pando(workdir: Path, env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def git(workdir: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=workdir, check=True, capture_output=True, text=True).stdout


def git_state(workdir: Path) -> dict:
    return {
        "index": hashlib.sha256((workdir / ".git" / "index").read_bytes()).hexdigest(),
        "head": git(workdir, "rev-parse", "HEAD"),
        "stash": git(workdir, "stash", "list"),
        "staged": git(workdir, "diff", "--cached"),
        "branches": git(workdir, "branch", "-a"),
    }


def message_count(workdir: Path, session: str) -> int:
    db = sqlite3.connect(f"file:{workdir / '.pando' / 'pando.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT COUNT(*) FROM messages WHERE session_id = ?", (session,)).fetchone()[0]
        counted = db.execute("SELECT message_count FROM sessions WHERE id = ?", (session,)).fetchone()[0]
    finally:
        db.close()
    assert rows == counted
    return rows


def bash_turn(workdir: Path, env: dict, model_server, command: str, session: str | None = None) -> dict:
    model_server.script(Reply.tool("bash", {"command": command}), Reply.text("done"))
    args = ["run", "--yolo", "-f", "json"] + (["--session", session] if session else []) + [f"please: {command}"]
    result = pando(workdir, env, *args)
    assert result.returncode == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


@pytest.fixture
def repo(pando_workdir: Path, pando_env: dict, model_server):
    workdir = pando_workdir
    git(workdir, "init", "-q")
    git(workdir, "config", "user.email", "t@example.com")
    git(workdir, "config", "user.name", "t")
    (workdir / ".gitignore").write_text(".pando/\n.pando.toml\n")
    (workdir / "tracked.txt").write_text("original\n")
    (workdir / "staged.txt").write_text("base\n")
    git(workdir, "add", ".")
    git(workdir, "commit", "-q", "-m", "base")
    (workdir / "stashed.txt").write_text("in the stash\n")
    git(workdir, "add", "stashed.txt")
    git(workdir, "stash", "-q")
    (workdir / "staged.txt").write_text("staged change\n")
    git(workdir, "add", "staged.txt")  # the index differs from HEAD: it must stay so
    write_model_config(workdir, model_server.base_url)
    return workdir


def test_rewind_files_and_conversation_of_real_turns_leaves_git_alone(repo, pando_env, model_server):
    first = bash_turn(repo, pando_env, model_server, "echo one > tracked.txt && echo new > created.txt")
    session = first["session_id"]
    bash_turn(repo, pando_env, model_server, "echo two >> tracked.txt && rm staged.txt", session)
    assert (repo / "tracked.txt").read_text() == "one\ntwo\n"
    before = git_state(repo)

    listed = json.loads(pando(repo, pando_env, "rewind", session, "--list", "--json").stdout)
    assert [(t["turn"], t["changed_files"]) for t in listed] == [(1, True), (2, True)]

    undo = pando(repo, pando_env, "rewind", session, "--files-only", "--json")  # the last turn
    assert undo.returncode == 0, undo.stderr
    report = json.loads(undo.stdout)
    assert report["turn"] == 2 and report["restored"] == ["staged.txt", "tracked.txt"]
    assert (repo / "tracked.txt").read_text() == "one\n"
    assert (repo / "staged.txt").read_text() == "staged change\n"
    assert (repo / "created.txt").read_text() == "new\n"
    assert report["messages_deleted"] == 0

    back = pando(repo, pando_env, "rewind", session, "1", "--json")
    assert back.returncode == 0, back.stderr
    report = json.loads(back.stdout)
    assert report["restored"] == ["tracked.txt"] and report["deleted"] == ["created.txt"]
    assert (repo / "tracked.txt").read_text() == "original\n"
    assert not (repo / "created.txt").exists()
    assert report["messages_deleted"] > 0
    assert message_count(repo, session) == 0
    assert json.loads(pando(repo, pando_env, "rewind", session, "--list", "--json").stdout) == []

    assert git_state(repo) == before
    assert git(repo, "stash", "list").count("\n") == 1


def test_a_file_changed_outside_the_agent_is_not_overwritten_without_force(repo, pando_env, model_server):
    session = bash_turn(repo, pando_env, model_server, "echo agent > tracked.txt && echo agent > other.txt")["session_id"]
    (repo / "tracked.txt").write_text("edited by the user\n")  # after the turn, outside the agent
    (repo / "mine.txt").write_text("the user's own file\n")

    refused = pando(repo, pando_env, "rewind", session, "--files-only")
    assert refused.returncode == 1
    assert "tracked.txt" in refused.stderr and "--force" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert (repo / "tracked.txt").read_text() == "edited by the user\n"
    assert (repo / "other.txt").exists()  # nothing at all was written

    forced = pando(repo, pando_env, "rewind", session, "--files-only", "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["conflicts"] == ["tracked.txt"]
    assert (repo / "tracked.txt").read_text() == "original\n"
    assert not (repo / "other.txt").exists()
    assert (repo / "mine.txt").read_text() == "the user's own file\n"  # never the agent's


def test_read_only_turns_leave_no_checkpoint_and_chat_only_keeps_files(repo, pando_env, model_server):
    session = bash_turn(repo, pando_env, model_server, "echo changed > tracked.txt")["session_id"]
    bash_turn(repo, pando_env, model_server, "cat tracked.txt", session)  # read-only: no snapshot taken
    listed = json.loads(pando(repo, pando_env, "rewind", session, "--list", "--json").stdout)
    assert [t["changed_files"] for t in listed] == [True, False]
    subjects = git(repo, "for-each-ref", "--format=%(contents:subject)", "refs/pando/snapshots/").splitlines()
    checkpoints = sorted(s.split(": ", 1)[1] for s in subjects if "checkpoint" in s)
    assert checkpoints == ["checkpoint after", "checkpoint before"]  # one pair: the turn that changed files

    chat = pando(repo, pando_env, "rewind", session, "2", "--chat-only", "--json")
    assert chat.returncode == 0, chat.stderr
    assert json.loads(chat.stdout)["restored"] == []
    assert (repo / "tracked.txt").read_text() == "changed\n"
    listed = json.loads(pando(repo, pando_env, "rewind", session, "--list", "--json").stdout)
    assert [t["turn"] for t in listed] == [1]


def test_rewind_in_a_directory_that_is_not_a_git_repository(pando_workdir, pando_env, model_server):
    (pando_workdir / "notes.txt").write_text("v1\n")
    write_model_config(pando_workdir, model_server.base_url)
    session = bash_turn(pando_workdir, pando_env, model_server, "echo v2 > notes.txt && mkdir d && echo x > d/new.txt")[
        "session_id"
    ]
    result = pando(pando_workdir, pando_env, "rewind", session, "--json")
    assert result.returncode == 0, result.stderr
    assert (pando_workdir / "notes.txt").read_text() == "v1\n"
    assert not (pando_workdir / "d").exists()


def test_rewind_errors_are_one_line(repo, pando_env, model_server):
    session = bash_turn(repo, pando_env, model_server, "echo x > tracked.txt")["session_id"]
    for args, needle in (
        (["rewind", "nosuchsession"], "no session"),
        (["rewind", session, "7"], "turn 7 does not exist"),
        (["rewind", session, "--files-only", "--chat-only"], "exclude each other"),
    ):
        result = pando(repo, pando_env, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert needle in result.stderr and "Traceback" not in result.stderr


def test_turns_and_rewind_from_secondaries_reach_the_primary(repo, pando_env, model_server, pando_instance):
    primary = pando_instance(["none"], workdir=repo)
    assert primary.role == "primary"
    session = bash_turn(repo, pando_env, model_server, "echo from-a-secondary > tracked.txt")["session_id"]
    count = f"result = app.store.messages.list(session_id={session!r}).__len__()"
    assert primary.eval(count) == 4
    checkpoints = primary.eval(f"result = app.checkpoints.checkpoints({session!r})")
    assert len(checkpoints) == 1  # recorded by the secondary through the primary's write path

    result = pando(repo, pando_env, "rewind", session, "--json")
    assert result.returncode == 0, result.stderr
    assert (repo / "tracked.txt").read_text() == "original\n"
    primary.wait_for(count, 0, timeout=30)
    assert primary.eval(f"result = app.store.sessions.get(id={session!r})['message_count']") == 0
    assert primary.eval(f"result = app.checkpoints.checkpoints({session!r})") == []


def snapshot_refs(workdir: Path) -> list[str]:
    """The git refs of the checkpoint snapshots that exist (session start/end snapshots left out)."""
    index = json.loads((workdir / ".pando" / "snapshots" / "index.json").read_text())
    checkpoints = {s["ref"] for s in index["snapshots"] if s["label"].startswith("checkpoint ")}
    refs = set(git(workdir, "for-each-ref", "--format=%(refname)", "refs/pando/snapshots").split())
    assert checkpoints <= refs  # every indexed checkpoint still has its commit
    return sorted(checkpoints)


def test_checkpoints_beyond_keep_checkpoints_are_pruned_and_a_rewind_that_far_is_refused(repo, pando_env, model_server):
    env = dict(pando_env, PANDO_SNAPSHOTS__KEEP_CHECKPOINTS="2")
    session = bash_turn(repo, env, model_server, "echo one > tracked.txt")["session_id"]
    bash_turn(repo, env, model_server, "echo two > tracked.txt", session)
    assert len(snapshot_refs(repo)) == 4  # two turns: a before and an after each
    other = bash_turn(repo, env, model_server, "echo three > other.txt")["session_id"]  # another session counts too

    assert len(snapshot_refs(repo)) == 4  # the oldest pair is gone
    listed = json.loads(pando(repo, env, "rewind", session, "--list", "--json").stdout)
    assert [(t["turn"], t["changed_files"], t["checkpoint_pruned"]) for t in listed] == [(1, True, True), (2, True, False)]
    refused = pando(repo, env, "rewind", session, "1", "--files-only")
    assert refused.returncode == 2
    assert "the checkpoint of turn 1 was pruned" in refused.stderr and "--chat-only" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert (repo / "tracked.txt").read_text() == "two\n"  # nothing was written

    back = pando(repo, env, "rewind", session, "2", "--files-only", "--json")
    assert back.returncode == 0, back.stderr
    assert (repo / "tracked.txt").read_text() == "one\n"
    assert pando(repo, env, "rewind", other, "--files-only").returncode == 0
    assert not (repo / "other.txt").exists()


def test_checkpoints_older_than_the_max_age_are_pruned(repo, pando_env, model_server):
    session = bash_turn(repo, pando_env, model_server, "echo one > tracked.txt")["session_id"]
    index_path = repo / ".pando" / "snapshots" / "index.json"
    index = json.loads(index_path.read_text())
    for snapshot in index["snapshots"]:  # the first turn's snapshots, 40 days old (default max age: 30)
        snapshot["created_at"] -= 40 * 86_400_000
    index_path.write_text(json.dumps(index))
    old_refs = set(snapshot_refs(repo))

    bash_turn(repo, pando_env, model_server, "echo two > tracked.txt", session)

    refs = set(snapshot_refs(repo))
    assert len(refs) == 2 and not refs & old_refs
    in_git = set(git(repo, "for-each-ref", "--format=%(refname)", "refs/pando/snapshots").split())
    assert old_refs.isdisjoint(in_git)  # the pruned commits are released, not only unlisted
    listed = json.loads(pando(repo, pando_env, "rewind", session, "--list", "--json").stdout)
    assert [t["checkpoint_pruned"] for t in listed] == [True, False]
