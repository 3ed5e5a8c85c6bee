"""Start-up stays light: answering `pando --version` and `pando plugins` imports no heavy library."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("asyncio", "sqlalchemy", "zmq", "openai", "anthropic", "lupa", "yaml", "httpx", "pydantic", "chromadb", "mcp")


def imported_modules(pando_env, *args: str) -> set[str]:
    code = (
        "import sys\nfrom pando_core.cli import main\n"
        "try:\n    main(sys.argv[1:])\nfinally:\n    print('MODULES:' + ','.join(sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, *args], env=pando_env, capture_output=True, text=True, timeout=60)
    line = [row for row in result.stderr.splitlines() if row.startswith("MODULES:")][-1]
    return {name.split(".")[0] for name in line[len("MODULES:") :].split(",")}


def test_version_and_plugins_import_nothing_heavy(pando_env):
    for args in (("--version",), ("plugins",), ("--help",)):
        heavy = imported_modules(pando_env, *args) & set(HEAVY)
        assert not heavy, f"pando {' '.join(args)} imported {sorted(heavy)}"


def test_the_invoked_subcommand_is_found_past_root_options():
    from pando_core.cli import invoked_command

    assert invoked_command(["--model", "a/b", "-f", "json", "run", "hi"]) == "run"
    assert invoked_command(["--plugins", "mcp", "mcp", "list"]) == "mcp"
    assert invoked_command(["--debug", "plugins", "--json"]) == "plugins"
    assert invoked_command(["-p", "hello"]) is None
    assert invoked_command(["--help"]) is None


def test_a_built_in_command_does_not_build_the_plugins_commands(make_pando_context):
    from pando_core import hookimpl
    from pando_core.cli import build_cli

    built = []

    class Plugin:
        @hookimpl
        def pando_register_commands(self, cli):
            built.append(True)

    context = make_pando_context(extra_plugins={"p": Plugin()})
    build_cli(context, "plugins")
    assert built == []
    build_cli(context, "p-command")
    build_cli(context, None)
    assert built == [True, True]
