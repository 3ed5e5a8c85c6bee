from __future__ import annotations

import sys
from pathlib import Path

import pytest

SERVERS = Path(__file__).parent / "servers"


def pylsp_command() -> str:
    """pylsp of this interpreter's environment (installed by the plugin's test extra / .ci/run)."""
    path = Path(sys.executable).parent / "pylsp"
    if not path.exists():
        pytest.fail(f"python-lsp-server is not installed next to {sys.executable}: pip install 'python-lsp-server[pyflakes]'")
    return str(path)


def server_table(name: str, command: str, args: list[str], extensions: list[str]) -> str:
    quoted = ", ".join(f'"{a}"' for a in args)
    exts = ", ".join(f'"{e}"' for e in extensions)
    return f'[lsp.{name}]\ncommand = "{command}"\nargs = [{quoted}]\nextensions = [{exts}]\n'


@pytest.fixture
def lsp_config():
    def make(wait_ms: int, *tables: str) -> str:
        return f"[lsp]\nwait_ms = {wait_ms}\nauto_detect = false\n" + "".join(tables)

    return make


@pytest.fixture
def pylsp_table():
    return server_table("pylsp", pylsp_command(), [], [".py"])


@pytest.fixture
def fake_table():
    def make(script: str, extensions: list[str], *extra: str) -> str:
        return server_table(Path(script).stem, sys.executable, [str(SERVERS / script), *extra], extensions)

    return make
