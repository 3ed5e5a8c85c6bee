"""Helpers: cron jobs written to the working directory's .pando.toml, and the environment in
which Mesnada's ``command`` engine runs each task as ``sh -c PROMPT`` (real, trivial processes)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# every task is `sh -c PROMPT`: "exit 0" ends at once, "sleep 30" keeps the job busy
ENGINE_ENV = {"PANDO_MESNADA__COMMAND": "sh -c {prompt}", "PANDO_MESNADA__POLL_INTERVAL": "0.05"}


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | list | int | float):
        return json.dumps(value)
    raise TypeError(value)


def write_jobs(workdir: Path, *jobs: dict, enabled: bool | None = None, extra: str = "") -> Path:
    lines = []
    if enabled is not None:
        lines += ["[cron]", f"enabled = {toml_value(enabled)}", ""]
    for job in jobs:
        lines.append("[[cron.jobs]]")
        job = {"engine": "command", **job}
        lines += [f"{key} = {toml_value(value)}" for key, value in job.items()]
        lines.append("")
    path = Path(workdir) / ".pando.toml"
    path.write_text("\n".join(lines) + extra)
    return path


def poll(check, timeout: float = 30.0, interval: float = 0.05, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        time.sleep(interval)


@pytest.fixture
def cron_env(pando_env):
    pando_env.update(ENGINE_ENV)
    return pando_env
