"""``isolation = "worktree"``: one git worktree and branch per task, so parallel agents never edit
the same checkout. At the end the task's changes are committed on its branch and a diff stat
against the commit it started from is recorded."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pando_core.errors import ValidationError

BRANCH_PREFIX = "mesnada/"


def _git(cwd: str | Path, *args: str, check: bool = True) -> str:
    result = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise ValidationError(f"git {args[0]} failed: {(result.stderr or result.stdout).strip().splitlines()[-1:]}")
    return result.stdout.strip()


def repository_root(work_dir: Path) -> Path:
    try:
        top = _git(work_dir, "rev-parse", "--show-toplevel")
    except (ValidationError, FileNotFoundError):
        raise ValidationError(f"isolation \"worktree\" needs a git repository; {work_dir} is not in one") from None
    return Path(top)


def create_worktree(work_dir: Path, worktrees_dir: Path, task_id: str) -> dict[str, str]:
    """A new worktree of *work_dir*'s repository on branch ``mesnada/<task>``; returns the task's
    work_dir inside it (the same sub-directory), the branch, the worktree path and the base commit."""
    root = repository_root(work_dir)
    base = _git(root, "rev-parse", "HEAD")
    path = worktrees_dir / task_id
    branch = BRANCH_PREFIX + task_id
    if path.exists():  # a relaunch: the task keeps its worktree and branch
        inner = path / work_dir.resolve().relative_to(root.resolve())
        return {"work_dir": str(inner), "branch": branch, "worktree": str(path), "base_commit": base}
    worktrees_dir.mkdir(parents=True, exist_ok=True)
    _git(root, "worktree", "add", "-q", "-b", branch, str(path), base)
    inner = path / work_dir.resolve().relative_to(root.resolve())
    return {"work_dir": str(inner), "branch": branch, "worktree": str(path), "base_commit": base}


def finish_worktree(worktree: str, task_id: str, base_commit: str | None) -> dict[str, str | None]:
    """Commit what the task changed on its branch; the diff stat against where it started."""
    try:
        _git(worktree, "add", "-A")
        if _git(worktree, "status", "--porcelain"):
            _git(
                worktree, "-c", "user.name=pando-mesnada", "-c", "user.email=mesnada@localhost",
                "commit", "-q", "-m", f"mesnada: work of {task_id}",
            )  # fmt: skip
        stat = _git(worktree, "diff", "--stat", f"{base_commit or 'HEAD'}..HEAD") if base_commit else ""
        return {"diff_stat": stat}
    except (ValidationError, OSError, subprocess.SubprocessError) as exc:
        return {"diff_stat": f"(no diff stat: {exc})"}


def remove_worktree(worktree: str) -> None:
    subprocess.run(["git", "-C", worktree, "worktree", "remove", "--force", worktree], capture_output=True, timeout=60)
