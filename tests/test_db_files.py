"""The database files are private (0600) and a damaged one is reported in one line (issue 19 #11)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from pando_core.db.engine import Database


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def pando(workdir: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_new_database_and_its_wal_and_shm_files_are_0600_under_a_lax_umask(tmp_path):
    path = tmp_path / ".pando" / "pando.db"
    old_umask = os.umask(0o002)  # what a shared-group setup has: files would be 0664
    try:
        db = Database(path)
        with db.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        reader = Database(path, readonly=True)
        with reader.read() as tx:
            assert tx is not None
        wal, shm = path.with_name("pando.db-wal"), path.with_name("pando.db-shm")
        assert wal.exists() and shm.exists()
        assert (mode(path), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
        reader.dispose()
        db.dispose()
    finally:
        os.umask(old_umask)


def test_files_left_0644_by_an_older_version_are_tightened(tmp_path):
    path = tmp_path / "pando.db"
    Database(path).dispose()
    for name in ("pando.db", "pando.db-wal", "pando.db-shm"):
        (tmp_path / name).touch()
        os.chmod(tmp_path / name, 0o644)
    db = Database(path)
    try:
        assert [mode(tmp_path / n) for n in ("pando.db", "pando.db-wal", "pando.db-shm")] == [0o600] * 3
    finally:
        db.dispose()


def test_pando_creates_its_database_private(pando_workdir, pando_env):
    # a pando that becomes the primary creates the database (read-only commands only observe)
    started = subprocess.run(
        [sys.executable, "-c", "from pando_core.runtime import bootstrap; bootstrap('.').cleanup()"],
        cwd=pando_workdir, env=pando_env, capture_output=True, text=True, timeout=60,
    )
    assert started.returncode == 0, started.stderr
    result = pando(pando_workdir, pando_env, "sessions", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    db = pando_workdir / ".pando" / "pando.db"
    assert mode(db) == 0o600
    for side in ("pando.db-wal", "pando.db-shm"):
        if (pando_workdir / ".pando" / side).exists():
            assert mode(pando_workdir / ".pando" / side) == 0o600


def test_a_damaged_database_is_one_line_naming_the_file(pando_workdir, pando_env):
    private = pando_workdir / ".pando"
    private.mkdir(mode=0o700)
    (private / "pando.db").write_bytes(b"this is not an sqlite file " * 400)
    result = pando(pando_workdir, pando_env, "sessions", "list")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "pando.db is damaged" in lines[0] and "not a database" in lines[0]
    assert "sqlalche.me" not in result.stderr and "Traceback" not in result.stderr
