"""Git plumbing for ``git`` snapshots: the working-tree state written as a tree through a temporary
index (the user's index, HEAD and branches untouched), tree diffs and blob reads."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from .snapshot_records import SnapshotError, _Change

REF_PREFIX = "refs/pando/snapshots/"
_GIT_SYMLINK = "120000"
_GIT_GITLINK = "160000"
_GIT_EXEC = "100755"
_EMPTY_TREE_INPUT = b""


class _Git:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.base_env = {k: v for k, v in os.environ.items() if k != "GIT_INDEX_FILE"}
        self.base_env.update(
            GIT_OPTIONAL_LOCKS="0",
            GIT_TERMINAL_PROMPT="0",
            GIT_AUTHOR_NAME="pando",
            GIT_AUTHOR_EMAIL="pando@localhost",
            GIT_COMMITTER_NAME="pando",
            GIT_COMMITTER_EMAIL="pando@localhost",
            LC_ALL="C",
        )
        info = self.run("rev-parse", "--show-toplevel", "--show-prefix").decode().splitlines()
        self.toplevel = Path(info[0])
        self.prefix = info[1] if len(info) > 1 else ""  # "sub/dir/" or ""

    @staticmethod
    def probe(workdir: Path) -> bool:
        """True when ``workdir`` is inside a git work tree (and git is installed)."""
        if shutil.which("git") is None:
            return False
        try:
            out = subprocess.run(
                ["git", "rev-parse", "--is-inside-work-tree"],
                cwd=workdir,
                capture_output=True,
                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return out.returncode == 0 and out.stdout.strip() == b"true"

    def run(
        self,
        *args: str,
        index: Path | None = None,
        input: bytes | None = None,
        cwd: Path | None = None,
        check: bool = True,
    ) -> bytes:
        proc = self.proc(*args, index=index, input=input, cwd=cwd)
        if check and proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            detail = err[-1] if err else f"exit code {proc.returncode}"
            raise SnapshotError(f"git {args[0]} failed: {detail}")
        return proc.stdout

    def proc(
        self,
        *args: str,
        index: Path | None = None,
        input: bytes | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        env = self.base_env
        if index is not None:
            env = {**env, "GIT_INDEX_FILE": str(index)}
        cmd = ["git", "-c", "core.quotepath=false", "-c", "core.safecrlf=false", *args]
        try:
            return subprocess.run(cmd, cwd=cwd or self.workdir, input=input, capture_output=True, env=env)
        except OSError as exc:
            raise SnapshotError(f"cannot run git: {exc}") from exc

    def real_index(self) -> Path:
        path = Path(self.run("rev-parse", "--git-path", "index").decode().strip())
        return path if path.is_absolute() else (self.workdir / path)

    def head(self) -> str | None:
        out = self.run("rev-parse", "-q", "--verify", "HEAD^{commit}", check=False).decode().strip()
        return out or None

    def empty_tree(self) -> str:
        return self.run("mktree", input=_EMPTY_TREE_INPUT).decode().strip()

    def worktree_tree(self, excluded: list[str], max_file_size: int | None) -> tuple[str, list[str]]:
        """Write the current working-directory state as a tree; returns (tree, skipped large files)."""
        with tempfile.TemporaryDirectory(prefix="pando-snap-") as tmp:
            index = Path(tmp) / "index"
            real = self.real_index()
            if real.is_file():
                shutil.copyfile(real, index)
            try:
                return self._stage_and_write(index, Path(tmp), excluded, max_file_size)
            except SnapshotError:
                if not index.exists():
                    raise
                # e.g. unmerged entries in the copied index: start again from an empty one
                index.unlink()
                return self._stage_and_write(index, Path(tmp), excluded, max_file_size)

    def _stage_and_write(
        self, index: Path, tmp: Path, excluded: list[str], max_file_size: int | None
    ) -> tuple[str, list[str]]:
        large: list[str] = []
        if max_file_size is not None:
            out = self.run("ls-files", "-z", "--others", "--exclude-standard", "--", ".", index=index)
            for rel in filter(None, out.decode(errors="surrogateescape").split("\0")):
                try:
                    st = os.lstat(self.workdir / rel)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_size > max_file_size:
                    large.append(rel)
        specs = ["."] + [f":(exclude,literal){p}" for p in excluded + large]
        spec_file = tmp / "pathspec"
        spec_file.write_bytes(("\0".join(specs) + "\0").encode(errors="surrogateescape"))
        proc = self.proc(
            "-c",
            "advice.addEmbeddedRepo=false",
            "-c",
            "advice.addIgnoredFile=false",
            "add",
            "-A",
            "--ignore-errors",
            f"--pathspec-from-file={spec_file}",
            "--pathspec-file-nul",
            index=index,
        )
        if proc.returncode != 0:
            # --ignore-errors: unreadable files are left out but git still exits non-zero; anything
            # else is a real failure
            errors = proc.stderr.decode(errors="replace").strip().splitlines()
            tolerated = (
                "warning:",
                "error: open(",
                "error: unable to index file",
                "fatal: adding files failed",
            )
            # an excluded path the user's .gitignore also ignores (".pando/" usually): git lists it
            # and exits 1 although everything else was staged
            ignored_notice = "The following paths are ignored by one of your .gitignore files:"
            real = [
                line
                for line in errors
                if not line.startswith(tolerated) and line != ignored_notice and not line.startswith("hint:")
                and line.rstrip("/") not in excluded
            ]
            if real or not errors:
                raise SnapshotError(f"git add failed: {real[-1] if real else f'exit code {proc.returncode}'}")
        for path in excluded:  # entries the user tracks there (the copied index still has them)
            self.run("rm", "--cached", "-r", "-q", "--ignore-unmatch", "--", f":(literal){path}", index=index)
        if not self.prefix:
            return self.run("write-tree", index=index).decode().strip(), large
        if not self.run("ls-files", "-z", "--", ".", index=index):
            return self.empty_tree(), large
        return self.run("write-tree", f"--prefix={self.prefix}", index=index).decode().strip(), large

    def tree_stats(self, tree: str) -> tuple[int, int]:
        out = self.run("ls-tree", "-r", "-l", "-z", "--full-tree", tree)
        count = size = 0
        for record in filter(None, out.split(b"\0")):
            meta = record.split(b"\t", 1)[0].split()
            if len(meta) >= 4 and meta[1] == b"blob":
                count += 1
                if meta[3].isdigit():
                    size += int(meta[3])
        return count, size

    def diff_trees(self, old: str, new: str) -> list[_Change]:
        out = self.run("diff-tree", "-r", "-z", "--no-renames", "--no-ext-diff", old, new, cwd=self.toplevel)
        parts = out.split(b"\0")
        changes: list[_Change] = []
        i = 0
        while i + 1 < len(parts):
            meta, raw_path = parts[i], parts[i + 1]
            i += 2
            if not meta.startswith(b":"):
                continue
            old_mode, new_mode, old_sha, new_sha, status = meta[1:].decode().split()
            path = raw_path.decode(errors="surrogateescape")
            status = status[0]
            old_entry = None if status == "A" else (old_mode, old_sha)
            new_entry = None if status == "D" else (new_mode, new_sha)
            changes.append(_Change("M" if status == "T" else status, path, old_entry, new_entry))
        return changes

    def blob(self, sha: str, path: str | None) -> bytes:
        if path is None:
            return self.run("cat-file", "blob", sha)
        return self.run("cat-file", "--filters", f"--path={self.prefix}{path}", sha, cwd=self.toplevel)

