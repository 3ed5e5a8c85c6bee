"""Snapshots: git-backed and content-addressed working-tree captures, diff, restore, prune, CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from pando_core.errors import PandoError
from pando_core.ignore import parse_ignore_lines
from pando_core.services import snapshots as snapshots_module
from pando_core.services.snapshots import (
    REF_PREFIX,
    SnapshotError,
    SnapshotService,
)

PYTHON = sys.executable


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, str]:
    """Isolated HOME and git configuration; a git identity for the *user's* commits."""
    home = tmp_path / "home"
    home.mkdir()
    values = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test User",
        "GIT_AUTHOR_EMAIL": "user@example.com",
        "GIT_COMMITTER_NAME": "Test User",
        "GIT_COMMITTER_EMAIL": "user@example.com",
    }
    for key in list(os.environ):
        if key.startswith("PANDO_") or key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
            monkeypatch.delenv(key)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return dict(os.environ)


def git(repo: Path, *args: str, input: str | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, input=input, capture_output=True, text=True)
    assert proc.returncode == 0, f"git {args}: {proc.stderr}"
    return proc.stdout


def write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def make_plain(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    write(path, ".gitignore", "*.log\nbuild/\n")
    write(path, "a.txt", "alpha\n")
    write(path, "b.txt", "bravo\n")
    write(path, "src/c.py", "print('c')\n")
    return path


def make_repo(path: Path) -> Path:
    """The same tree as make_plain, committed on ``main`` in a fresh git repository."""
    make_plain(path)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def user_git_state(repo: Path) -> dict[str, str]:
    return {
        "head": git(repo, "rev-parse", "HEAD"),
        "branch": git(repo, "symbolic-ref", "HEAD"),
        "cached": git(repo, "diff", "--cached"),
        "stage": git(repo, "ls-files", "-s"),
        "stash": git(repo, "stash", "list"),
        "branches": git(repo, "for-each-ref", "refs/heads", "refs/stash"),
    }


@pytest.fixture(params=["git", "files"])
def workdir(request, tmp_path, env) -> Path:
    if request.param == "git":
        return make_repo(tmp_path / "repo")
    return make_plain(tmp_path / "plain")


def blob_files(service: SnapshotService) -> list[Path]:
    return [p for p in service.blobs_dir.rglob("*") if p.is_file()]


# --------------------------------------------------------------------------- both kinds


def test_kind_detection(tmp_path, env):
    repo = SnapshotService(make_repo(tmp_path / "repo"))
    plain = SnapshotService(make_plain(tmp_path / "plain"))
    assert repo.take("s").kind == "git"
    assert plain.take("s").kind == "files"


def test_take_records_metadata_and_store_layout(workdir):
    service = SnapshotService(workdir)
    snap = service.take("session start", session_id="sess-1")
    assert snap.label == "session start"
    assert snap.session_id == "sess-1"
    assert snap.file_count == 4  # .gitignore, a.txt, b.txt, src/c.py
    assert abs(snap.created_at - snapshots_module.now_ms()) < 60_000
    store = workdir / ".pando" / "snapshots"
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    index = json.loads((store / "index.json").read_text())
    assert [s["id"] for s in index["snapshots"]] == [snap.id]
    if snap.kind == "git":
        assert snap.ref == REF_PREFIX + snap.id
        assert git(workdir, "rev-parse", snap.ref).strip() == snap.commit
    else:
        manifest = json.loads((store / "manifests" / f"{snap.id}.json").read_text())
        assert set(manifest["files"]) == {".gitignore", "a.txt", "b.txt", "src/c.py"}
        assert set(manifest["files"]["a.txt"]) >= {"sha256", "mode", "size"}
    assert service.read_file(snap.id, "a.txt") == b"alpha\n"


def test_diff_against_worktree_and_between_snapshots(workdir):
    service = SnapshotService(workdir)
    first = service.take("first")
    write(workdir, "a.txt", "alpha\nmore\n")
    (workdir / "b.txt").unlink()
    write(workdir, "new/d.txt", "delta\n")
    write(workdir, "debug.log", "ignored\n")
    write(workdir, "build/out.txt", "ignored too\n")

    assert service.changed_files(first.id) == [("M", "a.txt"), ("D", "b.txt"), ("A", "new/d.txt")]
    text = service.diff(first.id)
    assert "--- a/a.txt" in text and "+++ b/a.txt" in text and "+more" in text
    assert "-bravo" in text and "+delta" in text
    assert "debug.log" not in text and "build/" not in text

    second = service.take("second")
    assert second.file_count == 4
    assert service.changed_files(first.id, second.id) == service.changed_files(first.id)
    between = service.diff(first.id, second.id)
    assert "+more" in between and "-bravo" in between and "+delta" in between
    assert service.changed_files(second.id) == []
    assert service.diff(second.id) == ""
    assert service.changed_files(first.id, paths=["new"]) == [("A", "new/d.txt")]
    assert "a.txt" not in service.diff(first.id, paths=["new"])
    assert service.changed_files(second.id, first.id) == [("M", "a.txt"), ("A", "b.txt"), ("D", "new/d.txt")]


def test_restore_modified_and_deleted_leaves_added_alone(workdir):
    service = SnapshotService(workdir)
    snap = service.take("before edits")
    write(workdir, "a.txt", "clobbered\n")
    (workdir / "src" / "c.py").unlink()
    (workdir / "src").rmdir()
    write(workdir, "added/new.txt", "keep me\n")

    plan = service.restore(snap.id, dry_run=True)
    assert plan.restored == ["a.txt", "src/c.py"] and plan.deleted == []
    assert (workdir / "a.txt").read_text() == "clobbered\n"  # dry run changes nothing

    report = service.restore(snap.id)
    assert sorted(report.restored) == ["a.txt", "src/c.py"]
    assert report.deleted == []
    assert report.skipped == ["added/new.txt"]
    assert "added" in report.reasons["added/new.txt"]
    assert (workdir / "a.txt").read_text() == "alpha\n"
    assert (workdir / "src" / "c.py").read_text() == "print('c')\n"
    assert (workdir / "added" / "new.txt").read_text() == "keep me\n"
    # the state just before the restore was saved
    assert report.safety_snapshot
    assert service.read_file(report.safety_snapshot, "a.txt") == b"clobbered\n"

    report = service.restore(snap.id, delete_added=True)
    assert report.deleted == ["added/new.txt"] and report.restored == []
    assert not (workdir / "added").exists()  # emptied directory pruned
    assert service.changed_files(snap.id) == []
    assert service.restore(snap.id).changed is False


def test_restore_selected_paths_only(workdir):
    service = SnapshotService(workdir)
    snap = service.take("s")
    write(workdir, "a.txt", "A2\n")
    write(workdir, "src/c.py", "C2\n")
    write(workdir, "src/extra.py", "x\n")
    report = service.restore(snap.id, paths=["src"], delete_added=True)
    assert report.restored == ["src/c.py"] and report.deleted == ["src/extra.py"]
    assert (workdir / "a.txt").read_text() == "A2\n"
    assert (workdir / "src" / "c.py").read_text() == "print('c')\n"
    report = service.restore(snap.id, paths=[str(workdir / "a.txt")])
    assert report.restored == ["a.txt"]
    with pytest.raises(SnapshotError, match="outside"):
        service.restore(snap.id, paths=["../elsewhere"])


def test_restore_exec_bit_and_symlink(workdir):
    script = write(workdir, "run.sh", "#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    os.symlink("a.txt", workdir / "link")
    if (workdir / ".git").exists():
        git(workdir, "add", "-A")
        git(workdir, "commit", "-q", "-m", "more")
    service = SnapshotService(workdir)
    snap = service.take("s")
    script.unlink()
    (workdir / "link").unlink()
    os.symlink("b.txt", workdir / "link")
    assert dict((p, s) for s, p in service.changed_files(snap.id)) == {"link": "M", "run.sh": "D"}
    service.restore(snap.id)
    assert os.access(script, os.X_OK)
    assert script.read_text() == "#!/bin/sh\necho hi\n"
    assert os.readlink(workdir / "link") == "a.txt"


def test_binary_files_are_summarised(workdir):
    write(workdir, "img.bin", b"\x00\x01\x02binary")
    service = SnapshotService(workdir)
    snap = service.take("s")
    write(workdir, "img.bin", b"\x00\x01\x03binary!")
    text = service.diff(snap.id)
    assert "Binary files a/img.bin and b/img.bin differ" in text
    service.restore(snap.id)
    assert (workdir / "img.bin").read_bytes() == b"\x00\x01\x02binary"


def test_ids_prefixes_and_errors(workdir):
    service = SnapshotService(workdir)
    first = service.take("one", session_id="s1")
    second = service.take("two", session_id="s2")
    third = service.take("three", session_id="s1")
    assert first.id < second.id < third.id  # sortable
    assert [s.id for s in service.list()] == [third.id, second.id, first.id]
    assert [s.id for s in service.list(session_id="s1")] == [third.id, first.id]
    assert service.get(second.id) == second
    assert service.get(second.id[:-2]).id == second.id  # unique prefix
    with pytest.raises(SnapshotError, match="ambiguous"):
        service.get(first.id[:3])
    with pytest.raises(SnapshotError, match="unknown"):
        service.get("zzzz")
    with pytest.raises(SnapshotError, match="invalid"):
        service.get("../../etc/passwd")
    with pytest.raises(SnapshotError):
        service.diff("zzzz")
    assert issubclass(SnapshotError, PandoError)


def test_prune(workdir, monkeypatch):
    service = SnapshotService(workdir)
    real_now = snapshots_module.now_ms
    monkeypatch.setattr(snapshots_module, "now_ms", lambda: real_now() - 10 * 86_400_000)
    old = service.take("old")
    monkeypatch.setattr(snapshots_module, "now_ms", real_now)
    write(workdir, "a.txt", "v2\n")
    middle = service.take("middle")
    write(workdir, "a.txt", "v3\n")
    newest = service.take("newest")

    assert [s.id for s in service.prune(older_than_days=5)] == [old.id]
    assert [s.id for s in service.prune(max_snapshots=1)] == [middle.id]
    assert [s.id for s in service.list()] == [newest.id]
    assert service.prune(max_snapshots=5, older_than_days=5) == []
    if newest.kind == "git":
        refs = git(workdir, "for-each-ref", "--format=%(refname)", "refs/pando").split()
        assert refs == [REF_PREFIX + newest.id]
    else:
        assert sorted(p.name for p in service.manifests_dir.iterdir()) == [f"{newest.id}.json"]
        # blobs only the pruned snapshots referred to ("alpha\n", "v2\n") are gone
        assert len(blob_files(service)) == newest.file_count
    service.restore(newest.id)
    assert (workdir / "a.txt").read_text() == "v3\n"


def test_concurrent_takes_from_several_processes(workdir):
    code = (
        "import sys; from pathlib import Path; from pando_core.services.snapshots import SnapshotService;"
        "print(SnapshotService(Path(sys.argv[1])).take(sys.argv[2]).id)"
    )
    procs = [
        subprocess.Popen([PYTHON, "-c", code, str(workdir), f"p{i}"], stdout=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    ids = {p.communicate()[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert {s.id for s in SnapshotService(workdir).list()} == ids and len(ids) == 4


# --------------------------------------------------------------------------- git kind


def test_git_take_and_restore_leave_index_head_branch_and_stash_alone(tmp_path, env):
    repo = make_repo(tmp_path / "repo")
    write(repo, "a.txt", "stashed change\n")
    git(repo, "stash", "-q")
    write(repo, "a.txt", "staged change\n")
    git(repo, "add", "a.txt")
    write(repo, "a.txt", "staged change\nplus unstaged\n")
    write(repo, "untracked.txt", "u\n")
    write(repo, "ignored.log", "i\n")
    git(repo, "checkout", "-q", "-b", "feature")
    before = user_git_state(repo)
    status_before = git(repo, "status", "--porcelain")
    index_bytes = (repo / ".git" / "index").read_bytes()

    service = SnapshotService(repo)
    snap = service.take("start")
    assert user_git_state(repo) == before
    assert git(repo, "status", "--porcelain") == status_before  # the store itself is not untracked noise
    assert (repo / ".git" / "index").read_bytes() == index_bytes
    # the snapshot holds the working-tree content (not the staged one), untracked files, no ignored ones
    assert service.read_file(snap.id, "a.txt") == b"staged change\nplus unstaged\n"
    assert service.read_file(snap.id, "untracked.txt") == b"u\n"
    with pytest.raises(SnapshotError):
        service.read_file(snap.id, "ignored.log")
    assert snap.file_count == 5 and snap.head == before["head"].strip()

    write(repo, "a.txt", "agent edit\n")
    (repo / "untracked.txt").unlink()
    service.diff(snap.id)
    service.changed_files(snap.id)
    report = service.restore(snap.id)
    assert sorted(report.restored) == ["a.txt", "untracked.txt"]
    assert (repo / "a.txt").read_text() == "staged change\nplus unstaged\n"
    assert user_git_state(repo) == before
    assert git(repo, "status", "--porcelain") == status_before
    assert (repo / ".git" / "index").read_bytes() == index_bytes


def test_git_gitignore_respected(tmp_path, env):
    repo = make_repo(tmp_path / "repo")
    write(repo, "build/artifact.bin", b"\x00" * 10)
    write(repo, "trace.log", "log\n")
    write(repo, "sub/.gitignore", "secret.txt\n")
    write(repo, "sub/secret.txt", "s\n")
    write(repo, "sub/public.txt", "p\n")
    service = SnapshotService(repo)
    snap = service.take("s")
    listed = git(repo, "ls-tree", "-r", "--name-only", snap.commit).split()
    assert sorted(listed) == [".gitignore", "a.txt", "b.txt", "src/c.py", "sub/.gitignore", "sub/public.txt"]
    write(repo, "trace.log", "changed\n")
    assert service.changed_files(snap.id) == []


def test_git_tracked_pando_dir_and_store_excluded(tmp_path, env):
    repo = make_repo(tmp_path / "repo")
    write(repo, ".pando/config.toml", "x = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pando config")
    snap = SnapshotService(repo).take("s")
    listed = git(repo, "ls-tree", "-r", "--name-only", snap.commit).split()
    assert not any(p.startswith(".pando") for p in listed)


def test_git_workdir_in_subdirectory(tmp_path, env):
    repo = make_repo(tmp_path / "repo")
    sub = repo / "src"
    service = SnapshotService(sub)
    snap = service.take("s")
    assert snap.kind == "git" and snap.file_count == 1
    write(sub, "c.py", "changed\n")
    write(repo, "a.txt", "outside the workdir\n")
    assert service.changed_files(snap.id) == [("M", "c.py")]
    assert "--- a/c.py" in service.diff(snap.id)
    service.restore(snap.id)
    assert (sub / "c.py").read_text() == "print('c')\n"
    assert (repo / "a.txt").read_text() == "outside the workdir\n"
    assert (sub / ".pando" / "snapshots" / "index.json").exists()


def test_git_repo_without_commits(tmp_path, env):
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo, "x.txt", "x\n")
    service = SnapshotService(repo)
    snap = service.take("s")
    assert snap.kind == "git" and snap.head is None and snap.file_count == 1
    (repo / "x.txt").unlink()
    assert service.changed_files(snap.id) == [("D", "x.txt")]
    service.restore(snap.id)
    assert (repo / "x.txt").read_text() == "x\n"
    assert git(repo, "status", "--porcelain") == "?? x.txt\n"


def test_git_large_untracked_files_skipped(tmp_path, env):
    repo = make_repo(tmp_path / "repo")
    write(repo, "huge.dat", b"z" * 2000)
    write(repo, "small.dat", b"z" * 10)
    service = SnapshotService(repo, max_file_size=1000)
    snap = service.take("s")
    assert snap.skipped_count == 1
    listed = git(repo, "ls-tree", "-r", "--name-only", snap.commit).split()
    assert "small.dat" in listed and "huge.dat" not in listed


def test_git_custom_store_outside_workdir(tmp_path, env):
    repo = make_repo(tmp_path / "repo")
    store = tmp_path / "store"
    service = SnapshotService(repo, store_dir=store)
    snap = service.take("s")
    assert (store / "index.json").exists() and not (repo / ".pando").exists()
    assert service.get(snap.id) == snap


# --------------------------------------------------------------------------- files kind


def test_files_blobs_are_deduplicated(tmp_path, env):
    root = make_plain(tmp_path / "plain")
    write(root, "copy-of-a.txt", "alpha\n")  # same content as a.txt
    service = SnapshotService(root)
    first = service.take("one")
    assert len(blob_files(service)) == 4  # five files, four distinct contents
    second = service.take("two")
    assert len(blob_files(service)) == 4  # nothing new stored
    write(root, "a.txt", "changed\n")
    service.take("three")
    assert len(blob_files(service)) == 5
    assert first.file_count == second.file_count == 5
    blob = blob_files(service)[0]
    assert blob.parent.parent.parent == service.blobs_dir
    assert blob.name.startswith(blob.parent.parent.name + blob.parent.name)


def test_files_size_cap(tmp_path, env):
    root = make_plain(tmp_path / "plain")
    write(root, "big.bin", b"x" * 5000)
    service = SnapshotService(root, max_file_size=4096)
    snap = service.take("s")
    assert snap.skipped_count == 1 and snap.file_count == 4
    manifest = json.loads((service.manifests_dir / f"{snap.id}.json").read_text())
    assert "big.bin" not in manifest["files"]
    assert manifest["skipped"]["big.bin"]["size"] == 5000
    write(root, "big.bin", b"y" * 6000)
    assert service.changed_files(snap.id) == []
    assert SnapshotService(tmp_path / "plain", store_dir=tmp_path / "s2").take("s").file_count == 5


def test_files_gitignore_rules(tmp_path, env):
    root = tmp_path / "plain"
    write(
        root,
        ".gitignore",
        "# comment\n*.log\n!keep.log\nbuild/\n/rootonly.txt\n**/cache\ndocs/*.tmp\nnode_modules\n",
    )
    for rel in [
        "a.log",
        "keep.log",
        "sub/b.log",
        "build/x.o",
        "sub/build/y.o",
        "rootonly.txt",
        "sub/rootonly.txt",
        "deep/er/cache/c.bin",
        "docs/a.tmp",
        "docs/nested/b.tmp",
        "node_modules/pkg/index.js",
        "notbuild",
        ".git/HEAD",
        "nested/.git/config",
        ".pando/state.db",
        "sub/.gitignore",
        "sub/private.txt",
        "sub/public.txt",
    ]:
        write(root, rel, rel)
    write(root, "sub/.gitignore", "private.txt\n")
    snap = SnapshotService(root).take("s")
    manifest = json.loads((root / ".pando" / "snapshots" / "manifests" / f"{snap.id}.json").read_text())
    assert sorted(manifest["files"]) == [
        ".gitignore",
        "docs/nested/b.tmp",
        "keep.log",
        "notbuild",
        "sub/.gitignore",
        "sub/public.txt",
        "sub/rootonly.txt",
    ]


def test_ignore_rule_parsing():
    rules = parse_ignore_lines(["*.py[co]", "a/**/z", "\\#hash", "trailing/  "])
    matched = {r.regex.pattern for r in rules}
    assert len(matched) == 4
    from pando_core.ignore import is_ignored as _ignored

    assert _ignored(rules, "x/y.pyc", False)
    assert not _ignored(rules, "x/y.py", False)
    assert _ignored(rules, "a/z", False) and _ignored(rules, "a/b/c/z", False)
    assert _ignored(rules, "#hash", False)
    assert _ignored(rules, "trailing", True) and not _ignored(rules, "trailing", False)
    # git semantics: "]" first in a class is literal; braces are not alternatives
    special = parse_ignore_lines(["[]x]", "{a,b}.txt"])
    assert _ignored(special, "]", False) and _ignored(special, "x", False)
    assert _ignored(special, "{a,b}.txt", False) and not _ignored(special, "a.txt", False)


def test_files_restore_with_missing_blob_is_reported(tmp_path, env):
    root = make_plain(tmp_path / "plain")
    service = SnapshotService(root)
    snap = service.take("s")
    write(root, "a.txt", "changed\n")
    for blob in blob_files(service):
        blob.unlink()
    report = service.restore(snap.id, safety_snapshot=False)
    assert report.restored == [] and report.skipped == ["a.txt"]
    assert "missing" in report.reasons["a.txt"]


# --------------------------------------------------------------------------- CLI


def run_cli(workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "pando_core", "--plugins", "none", "--cwd", str(workdir), "snapshots", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


@pytest.mark.slow
def test_cli_list_take_diff_restore(request, workdir, env):
    root = workdir
    kind = request.node.callspec.params["workdir"]  # "git" or "files", the fixture's parameter
    taken = run_cli(root, env, "take", "by hand")
    assert taken.returncode == 0, taken.stderr
    listed = run_cli(root, env, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    snaps = json.loads(listed.stdout)
    assert len(snaps) == 1 and snaps[0]["label"] == "by hand" and snaps[0]["kind"] == kind
    snap_id = snaps[0]["id"]
    assert snap_id in taken.stdout

    write(root, "a.txt", "edited\n")
    write(root, "added.txt", "new\n")
    diff = run_cli(root, env, "diff", snap_id)
    assert diff.returncode == 0 and "-alpha" in diff.stdout and "+edited" in diff.stdout
    names = run_cli(root, env, "diff", snap_id, "--name-status")
    assert names.stdout.splitlines() == ["M\ta.txt", "A\tadded.txt"]

    refused = run_cli(root, env, "restore", snap_id)
    assert refused.returncode == 2
    assert "--yes" in refused.stderr and "Traceback" not in refused.stderr
    assert (root / "a.txt").read_text() == "edited\n"

    restored = run_cli(root, env, "restore", snap_id[:-1], "--yes")
    assert restored.returncode == 0, restored.stderr
    assert (root / "a.txt").read_text() == "alpha\n"
    assert (root / "added.txt").exists()
    restored = run_cli(root, env, "restore", snap_id, "--yes", "--delete-added", "--path", "added.txt")
    assert restored.returncode == 0 and not (root / "added.txt").exists()
    assert "Nothing to restore" in run_cli(root, env, "restore", snap_id).stdout

    human = run_cli(root, env, "list")
    assert "by hand" in human.stdout and "pre-restore" in human.stdout

    unknown = run_cli(root, env, "diff", "zzzzzz")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == ["pando: error: unknown snapshot 'zzzzzz'"]


@pytest.mark.slow
def test_cli_restore_asks_for_confirmation_on_a_terminal(tmp_path, env):
    root = make_plain(tmp_path / "plain")
    snap = SnapshotService(root).take("s")
    write(root, "a.txt", "edited\n")
    argv = ["-m", "pando_core", "--plugins", "none", "--cwd", str(root), "snapshots", "restore", snap.id]
    for answer, expected, code, content in (
        ("n", "Aborted", 1, "edited\n"),
        ("y", "Restored 1", 0, "alpha\n"),
    ):
        child = pexpect.spawn(PYTHON, argv, env=env, encoding="utf-8", timeout=30, dimensions=(24, 100))
        child.expect("Restore 1 file")
        child.send(answer)
        child.expect(expected)
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == code
        assert (root / "a.txt").read_text() == content


@pytest.mark.parametrize("make_git", [True, False])
def test_snapshot_kind_is_probed_once(tmp_path, monkeypatch, make_git):
    workdir = tmp_path / "w"
    workdir.mkdir()
    if make_git:
        subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
    (workdir / "a.txt").write_text("a\n")
    probes = []
    real = snapshots_module._Git.probe
    monkeypatch.setattr(snapshots_module._Git, "probe", staticmethod(lambda wd: probes.append(wd) or real(wd)))
    service = SnapshotService(workdir, store_dir=tmp_path / "store")
    kinds = {service.take(label).kind for label in ("start", "end", "again")}
    assert kinds == {"git" if make_git else "files"}
    assert len(probes) == 1


def test_a_gitignore_listing_dot_pando_does_not_fail_the_snapshot(tmp_path, env):
    """Issue 18 #1: git exits 1 for the ignored-path exclude although everything was staged."""
    repo = make_repo(tmp_path / "repo")
    (repo / ".gitignore").write_text("*.log\nbuild/\n.pando/\n", encoding="utf-8")
    git(repo, "commit", "-q", "-am", "ignore .pando")
    (repo / ".pando").mkdir()
    (repo / ".pando" / "pando.db").write_bytes(b"db")
    write(repo, "new.txt", "new\n")
    service = SnapshotService(repo)
    snapshot = service.take("session start")
    files = git(repo, "ls-tree", "-r", "--name-only", snapshot.commit).split()
    assert "new.txt" in files and not any(name.startswith(".pando/") for name in files)
