"""Fixtures for the reliability tests (helpers live in ``reliability_kit.py``).

Every worker process a test starts through ``cluster`` is SIGKILLed and reaped at teardown.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reliability_kit import ROOT, Cluster  # noqa: E402


@pytest.fixture
def runtime_dir(monkeypatch) -> Iterator[str]:
    """A short private XDG_RUNTIME_DIR (ipc socket paths must stay short), for children and us."""
    path = tempfile.mkdtemp(prefix="pr-", dir="/tmp" if os.path.isdir("/tmp") else None)
    os.chmod(path, 0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def workdir(tmp_path) -> Path:
    wd = tmp_path / "wd"
    wd.mkdir()
    return wd


@pytest.fixture
def cluster(workdir, runtime_dir) -> Iterator[Cluster]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "XDG_RUNTIME_DIR": runtime_dir}
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    c = Cluster(workdir, env)
    try:
        yield c
    finally:
        c.teardown()
