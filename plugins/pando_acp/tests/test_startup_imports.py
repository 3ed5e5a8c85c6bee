"""`pando --version`, `pando plugins` and `pando --help` with pando-acp installed import neither the
``acp`` library nor pydantic nor asyncio: only `pando acp` needs them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = {"acp", "pydantic", "pydantic_core", "asyncio", "sqlalchemy", "zmq", "openai"}


def imported(pando_env, *args: str) -> tuple[set[str], str]:
    code = (
        "import sys\nfrom pando_core.cli import main\n"
        "try:\n    main(sys.argv[1:])\nfinally:\n    print('MODULES:' + ','.join(sys.modules), file=sys.stderr)\n"
    )
    env = dict(pando_env, PANDO_PLUGINS="acp")
    result = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60)
    line = [row for row in result.stderr.splitlines() if row.startswith("MODULES:")][-1]
    return {name.split(".")[0] for name in line[len("MODULES:") :].split(",")}, result.stdout


def test_listing_commands_import_nothing_heavy(pando_env):
    for args in (("--version",), ("plugins",), ("--help",), ("acp", "--help")):
        modules, out = imported(pando_env, *args)
        assert not modules & HEAVY, f"pando {' '.join(args)} imported {sorted(modules & HEAVY)}"
    modules, out = imported(pando_env, "plugins")
    assert "pando_acp" in modules and "acp" in out  # the plugin is loaded, and listed


def test_acp_help_explains_the_command(run_pando):
    result = run_pando("--plugins", "acp", "acp", "--help")
    assert result.returncode == 0
    assert "Agent Client Protocol" in result.stdout and "--mode" in result.stdout


def test_a_bad_mode_is_one_clear_line(run_pando, pando_workdir):
    result = run_pando("--plugins", "acp", "acp", "--mode", "yolo")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "allow_yolo" in lines[0]
