"""`pando --version`, `pando plugins` and `pando cron --help` import nothing heavy: the entry
point module only wires hooks (cronsim, the scheduler and the store load when used)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "cronsim",
    "sqlalchemy",
    "zmq",
    "distributed",
    "dask",
    "openai",
    "anthropic",
    "httpx",
    "pydantic",
    "mcp",
)


def imported(pando_env, *args: str) -> set[str]:
    code = (
        "import sys\nfrom pando_core.cli import main\n"
        "try:\n    main(sys.argv[1:])\nfinally:\n    print('MODULES:' + ','.join(sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *args], env=pando_env, capture_output=True, text=True, timeout=60
    )
    line = [row for row in result.stderr.splitlines() if row.startswith("MODULES:")][-1]
    return set(line[len("MODULES:") :].split(","))


def test_start_up_stays_light(pando_env):
    for args in (("--version",), ("plugins",), ("cron", "--help")):
        modules = imported(pando_env, *args)
        heavy = {name.split(".")[0] for name in modules} & set(HEAVY)
        assert not heavy, f"pando {' '.join(args)} imported {sorted(heavy)}"
        if args == ("plugins",):
            assert "pando_cron.plugin" in modules
            assert {m for m in modules if m.startswith("pando_cron.")} <= {
                "pando_cron.plugin",
                "pando_cron.cli",
            }
