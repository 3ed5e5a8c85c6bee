"""Fixtures: fake engine executables on PATH, a real primary runtime on the test's working
directory, and orchestrators on it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # mesnada_testing: helpers shared by the tests

HERE = Path(__file__).parent
FAKE_AGENT = HERE / "fake_agent.py"


@pytest.fixture
def fake_engines(tmp_path, monkeypatch, pando_env):
    """Every engine name (claude, gemini, ...) on PATH as the fake agent; returns the records dir."""
    bin_dir = tmp_path / "bin"
    records = tmp_path / "records"
    bin_dir.mkdir()
    records.mkdir()
    for name in ("claude", "gemini", "opencode", "codex", "copilot", "fake-agent"):
        script = bin_dir / name
        script.write_text(f"#!{sys.executable}\nimport runpy\nrunpy.run_path({str(FAKE_AGENT)!r}, run_name='__main__')\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_AGENT_RECORDS", str(records))
    pando_env["PATH"] = os.environ["PATH"]
    pando_env["FAKE_AGENT_RECORDS"] = str(records)
    return Records(records)


class Records:
    def __init__(self, path: Path) -> None:
        self.path = path

    def all(self) -> list[dict]:
        out = []
        for file in sorted(self.path.glob("*.json")):
            try:
                out.append(json.loads(file.read_text()))
            except ValueError:
                continue
        return out

    def for_prompt(self, needle: str) -> dict:
        found = [r for r in self.all() if needle in r["prompt"]]
        assert len(found) == 1, f"{len(found)} runs with {needle!r} in their prompt"
        return found[0]


@pytest.fixture
def primary(pando_workdir, pando_env):
    """A real primary runtime (lock, bus, database) on the working directory."""
    from pando_mesnada.store import component

    from pando_core.db import core_component
    from pando_core.runtime import bootstrap

    runtime = bootstrap(pando_workdir, components=[core_component(), component()])
    assert runtime.role == "primary"
    yield runtime
    runtime.cleanup()


@pytest.fixture
def make_orchestrator(primary, pando_workdir):
    from pando_mesnada.orchestrator import Orchestrator

    made = []

    def make(**config):
        config.setdefault("poll_interval", 0.05)
        config.setdefault("stop_grace", 1.0)
        orchestrator = Orchestrator(primary.store, pando_workdir, config)
        made.append(orchestrator)
        return orchestrator

    yield make
    for orchestrator in made:
        for task in orchestrator.store.mesnada.list(status=["running"]):
            orchestrator.runner.stop(task)
        orchestrator.close()
