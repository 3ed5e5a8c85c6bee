"""`pando snapshots take` captures with the same [snapshots] settings as the automatic snapshots."""

from __future__ import annotations

import json
import subprocess
import sys

PANDO = [sys.executable, "-m", "pando_core", "--plugins", "none"]


def test_take_leaves_out_files_over_the_configured_max_file_size(pando_workdir, pando_env):
    (pando_workdir / ".pando.toml").write_text("[snapshots]\nmax_file_size = 64\n", encoding="utf-8")
    (pando_workdir / "small.txt").write_text("small\n")
    (pando_workdir / "big.txt").write_text("x" * 1000)
    proc = subprocess.run(
        [*PANDO, "snapshots", "take", "--json", "check"],
        cwd=pando_workdir, env=pando_env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    snap = json.loads(proc.stdout)
    assert snap["skipped_count"] == 1
