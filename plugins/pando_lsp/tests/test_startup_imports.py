"""`pando --version`, `pando plugins` and `pando --help` with pando-lsp installed import no lsprotocol."""

from __future__ import annotations

import subprocess
import sys

HEAVY = {"lsprotocol", "cattrs", "asyncio", "pylsp"}  # (attrs: other libraries of the CLI use it)


def imported_modules(env, *args: str) -> set[str]:
    code = (
        "import sys\nfrom pando_core.cli import main\n"
        "try:\n    main(sys.argv[1:])\nfinally:\n    print('MODULES:' + ','.join(sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60)
    line = [row for row in done.stderr.splitlines() if row.startswith("MODULES:")][-1]
    return {name.split(".")[0] for name in line[len("MODULES:") :].split(",")}


def test_version_plugins_and_help_import_nothing_heavy(pando_env):
    for args in (("--version",), ("--plugins", "lsp", "plugins"), ("--plugins", "lsp", "--help")):
        modules = imported_modules(pando_env, *args)
        assert "pando_lsp" in modules or args == ("--version",)
        assert not modules & HEAVY, f"pando {' '.join(args)} imported {sorted(modules & HEAVY)}"
