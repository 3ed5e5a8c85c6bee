"""`pando --version` and `pando plugins` with pando-mcp installed do not import the SDK."""

from __future__ import annotations

import subprocess
import sys

HEAVY = {"mcp", "mcp_types", "httpx2", "anyio", "pydantic", "tomlkit", "json_repair", "asyncio", "sqlalchemy"}


def imported_modules(env, *args: str) -> set[str]:
    code = (
        "import sys\nfrom pando_core.cli import main\n"
        "try:\n    main(sys.argv[1:])\nfinally:\n    print('MODULES:' + ','.join(sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60)
    line = [row for row in done.stderr.splitlines() if row.startswith("MODULES:")][-1]
    return {name.split(".")[0] for name in line[len("MODULES:"):].split(",")}


def test_version_plugins_and_help_import_nothing_heavy(pando_env):
    for args in (("--version",), ("--plugins", "mcp", "plugins"), ("--plugins", "mcp", "--help")):
        modules = imported_modules(pando_env, *args)
        assert "pando_mcp" in modules or args == ("--version",)
        assert not modules & HEAVY, f"pando {' '.join(args)} imported {sorted(modules & HEAVY)}"
