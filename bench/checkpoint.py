"""Cost of a turn checkpoint in a 10k-file git repository.

A checkpoint is what the agent takes before the first file-changing tool call of a turn (and again
when the turn ends): a working-tree snapshot through a private index (`SnapshotService.take(...,
stats=False)`). Baseline, measured in the same run on the same tree: `git write-tree` of the
user's own index, the least git itself does to name a tree, and `git status --porcelain`, which
stats every file as a checkpoint must. Target: checkpoint <= 150 ms at the
median. `--json` prints the medians and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build_repo(root: Path, files: int) -> None:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    for i in range(files):
        directory = root / f"pkg{i // 100:03d}"
        directory.mkdir(exist_ok=True)
        (directory / f"mod{i % 100:03d}.py").write_text(f"# module {i}\nVALUE = {i}\n" + "x = 1\n" * 20)
    (root / ".gitignore").write_text(".pando/\n")
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "base"], cwd=root, check=True, env=env)
    # a working tree mid-session: a few edits and a new file, not staged
    for i in range(5):
        (root / f"pkg{i:03d}" / "mod000.py").write_text(f"# edited {i}\n")
    (root / "new_module.py").write_text("print('new')\n")


def median_ms(fn, rounds: int) -> float:
    fn()  # warm the page cache and git's stat data
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="pando-bench-checkpoint-"))
    try:
        return measure(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(root: Path, args: argparse.Namespace) -> int:
    from pando_core.services.snapshots import SnapshotService

    build_repo(root, args.files)
    service = SnapshotService(root)

    def checkpoint() -> None:
        service.take("checkpoint before", session_id="bench", stats=False)

    def full_snapshot() -> None:
        service.take("snapshot", session_id="bench")

    def write_tree() -> None:
        subprocess.run(["git", "write-tree"], cwd=root, check=True, capture_output=True)

    def status() -> None:
        subprocess.run(["git", "status", "--porcelain"], cwd=root, check=True, capture_output=True,
                       env=dict(os.environ, GIT_OPTIONAL_LOCKS="0"))

    baseline = median_ms(write_tree, args.rounds)
    scan = median_ms(status, args.rounds)
    taken = median_ms(checkpoint, args.rounds)
    counted = median_ms(full_snapshot, args.rounds)
    result = {
        "files": args.files,
        "checkpoint_ms_median": round(taken, 1),
        "snapshot_with_stats_ms_median": round(counted, 1),
        "git_write_tree_ms_median": round(baseline, 1),
        "git_status_ms_median": round(scan, 1),
        "ratio_vs_write_tree": round(taken / baseline, 2) if baseline else None,
        "ratio_vs_status": round(taken / scan, 2) if scan else None,
        "target_ms": 150,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"repository: {args.files} files (5 edited, 1 new), {args.rounds} rounds")
        print(f"checkpoint (take, stats=False)  median {taken:7.1f} ms   target <= 150 ms")
        print(f"snapshot with file counts       median {counted:7.1f} ms")
        print(f"baseline git write-tree         median {baseline:7.1f} ms")
        print(f"baseline git status (no locks)  median {scan:7.1f} ms")
        print(f"ratio checkpoint / write-tree   {result['ratio_vs_write_tree']}x")
        print(f"ratio checkpoint / status       {result['ratio_vs_status']}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
