"""`pando --version` and `pando plugins` with the evaluator installed stay light."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # real pando processes

HEAVY = ("sqlalchemy", "zmq", "openai", "anthropic", "httpx", "asyncio")
# cli.py is imported (the CLI is built before argv is parsed) but imports only typer
OURS_LOADED_LATE = ("pando_evaluator.store", "pando_evaluator.judge", "pando_evaluator.service", "pando_evaluator.evaluation")


def _modules(pando_env, *args):
    code = (
        "import sys\nfrom pando_core.cli import main\n"
        "try:\n    main(sys.argv[1:])\nfinally:\n    print('MODULES:' + ','.join(sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "--plugins", "evaluator", *args], env=pando_env, capture_output=True, text=True, timeout=60
    )
    line = [row for row in result.stderr.splitlines() if row.startswith("MODULES:")][-1]
    return set(line[len("MODULES:") :].split(","))


def test_version_and_plugins_import_nothing_heavy(pando_env):
    for args in (("--version",), ("plugins",)):
        modules = _modules(pando_env, *args)
        heavy = {name.split(".")[0] for name in modules} & set(HEAVY)
        assert not heavy, f"pando {' '.join(args)} imported {sorted(heavy)}"
        assert not modules & set(OURS_LOADED_LATE), sorted(modules & set(OURS_LOADED_LATE))
    assert "pando_evaluator.plugin" in _modules(pando_env, "plugins")
