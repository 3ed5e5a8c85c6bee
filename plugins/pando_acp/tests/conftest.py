"""Fixtures for pando-acp: real ``pando acp`` processes driven by the ``acp`` library's client side
(``pando_acp.testing.EditorClient`` plays the editor)."""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import acp
import pytest
from pando_acp.testing import DEADLINE_S, EditorClient

from pando_core.testing.pytest_plugin import write_model_config


@pytest.fixture
def acp_workdir(pando_workdir, model_server) -> Path:
    """A working directory whose ``.pando.toml`` points at the scripted model server, with two models."""
    extra = '\n[providers.scripted.models.test-model]\n\n[providers.scripted.models.other-model]\n'
    write_model_config(pando_workdir, model_server.base_url, extra=extra)
    return pando_workdir


@pytest.fixture
def start_acp(acp_workdir, pando_env):
    """``async with start_acp(client) as (conn, process)``: a real ``pando acp`` with ``client`` initialised."""

    @asynccontextmanager
    async def start(client: EditorClient, *args: str, workdir: Path | None = None, initialize: bool = True, plugins: str = "acp"):
        env = dict(pando_env, PANDO_PLUGINS=plugins, PANDO_STRICT_PLUGINS="1")
        async with acp.spawn_agent_process(
            client, sys.executable, "-m", "pando_core", *args, "acp", cwd=str(workdir or acp_workdir), env=env
        ) as (conn, process):
            if initialize:
                await asyncio.wait_for(conn.initialize(protocol_version=1, client_capabilities=client.capabilities), DEADLINE_S)
            try:
                yield conn, process
            finally:
                if process.returncode is None:
                    process.stdin.close()
                    try:
                        await asyncio.wait_for(process.wait(), DEADLINE_S)
                    except TimeoutError:
                        process.kill()
                        await process.wait()

    return start


def acpx_path() -> str | None:
    """acpx from PATH or from the repository's .ci-tools (where .ci/run installs it)."""
    from shutil import which

    found = which("acpx")
    if found:
        return found
    repo = Path(__file__).resolve().parents[3]
    local = repo / ".ci-tools" / "node_modules" / ".bin" / "acpx"
    return str(local) if local.exists() and os.access(local, os.X_OK) else None


@pytest.fixture
def acpx():
    path = acpx_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("acpx is not installed: .ci/run installs it with npm into .ci-tools/")
        pytest.skip("acpx is not installed (npm install --prefix .ci-tools acpx@0.1.15)")
    return path
