"""Plugin discovery, selection, isolation of broken plugins, strict mode, `pando plugins`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from pando_core.errors import UsageError
from pando_core.plugins import Plugins, select_plugins
from tests.support.fake_dist import make_distribution

GOOD = textwrap.dedent(
    """
    import typer
    from pando_core import hookimpl

    app = typer.Typer()

    @app.command()
    def hello():
        print("hello from good")

    @hookimpl
    def pando_register_commands(cli):
        cli.add_typer(app, name="good")
    """
)
OTHER = textwrap.dedent(
    """
    from pando_core import hookimpl

    @hookimpl
    def pando_rewrite_prompt(prompt):
        return prompt.upper()
    """
)
BROKEN = "raise RuntimeError('boom at import')\n"


@pytest.fixture
def plugin_path(tmp_path):
    root = make_distribution(tmp_path / "site", "pando-good", "1.2.3", {"good": "good_plugin"}, {"good_plugin": GOOD})
    make_distribution(root, "pando-other", "0.5.0", {"other": "other_plugin"}, {"other_plugin": OTHER})
    make_distribution(root, "pando-broken", "0.0.1", {"broken": "broken_plugin"}, {"broken_plugin": BROKEN})
    return root


def pando(plugin_path, pando_env, *args, extra_env=None, cwd=None):
    env = dict(pando_env)
    env["PYTHONPATH"] = str(plugin_path) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "pando_core", *args], env=env, capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_broken_plugin_does_not_break_pando(plugin_path, pando_env, tmp_path):
    result = pando(plugin_path, pando_env, "plugins", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["good"]["status"] == "loaded"
    assert rows["good"]["version"] == "1.2.3"
    assert rows["good"]["distribution"] == "pando-good"
    assert "pando_register_commands" in rows["good"]["hooks"]
    assert rows["broken"]["status"] == "error"
    assert "boom at import" in rows["broken"]["error"]
    assert "plugin 'broken' failed to load" in result.stderr
    assert "Traceback" not in result.stderr
    # the good plugin's command still works
    hello = pando(plugin_path, pando_env, "good", "hello", cwd=tmp_path)
    assert hello.returncode == 0 and "hello from good" in hello.stdout


def test_strict_mode_makes_a_broken_plugin_fatal(plugin_path, pando_env, tmp_path):
    result = pando(plugin_path, pando_env, "plugins", extra_env={"PANDO_STRICT_PLUGINS": "1"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "boom at import" in result.stderr
    assert "Traceback" not in result.stderr


def test_plugins_flag_selects_exactly_the_named_ones(plugin_path, pando_env, tmp_path):
    result = pando(plugin_path, pando_env, "--plugins", "other", "plugins", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row["status"] for row in json.loads(result.stdout)}
    assert rows["other"] == "loaded"
    assert {status for name, status in rows.items() if name != "other"} == {"disabled"}
    # a command of an unselected plugin does not exist
    missing = pando(plugin_path, pando_env, "--plugins=other", "good", "hello", cwd=tmp_path)
    assert missing.returncode == 2


def test_env_and_config_selection(plugin_path, pando_env, tmp_path):
    rows = json.loads(pando(plugin_path, pando_env, "plugins", "--json", extra_env={"PANDO_PLUGINS": "good"}, cwd=tmp_path).stdout)
    assert {r["name"]: r["status"] for r in rows}["good"] == "loaded"
    assert {r["name"]: r["status"] for r in rows}["other"] == "disabled"
    (tmp_path / ".pando.toml").write_text('[plugins]\ndisabled = ["broken"]\n')
    rows = json.loads(pando(plugin_path, pando_env, "plugins", "--json", cwd=tmp_path).stdout)
    statuses = {r["name"]: r["status"] for r in rows}
    assert (statuses["good"], statuses["other"], statuses["broken"]) == ("loaded", "loaded", "disabled")


def test_unknown_plugin_name_lists_installed(plugin_path, pando_env, tmp_path):
    result = pando(plugin_path, pando_env, "--plugins", "nope", "plugins", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown plugin nope" in result.stderr
    listed = result.stderr.split("installed plugins:")[1]
    assert all(name in listed for name in ("broken", "good", "other"))


def test_select_plugins_rules():
    installed = ["a", "b", "c"]
    assert select_plugins(installed, None) == ["a", "b", "c"]
    assert select_plugins(installed, ["c", "a"]) == ["c", "a"]
    assert select_plugins(installed, ["none"]) == []
    assert select_plugins(installed, None, enabled=["a", "b"], disabled=["b"]) == ["a"]
    with pytest.raises(UsageError):
        select_plugins(installed, ["z"])


def test_pipeline_and_async_hooks():
    import asyncio

    from pando_core import hookimpl

    class Upper:
        @hookimpl
        def pando_rewrite_prompt(self, prompt):
            return prompt.upper()

    class Suffix:
        @hookimpl
        async def pando_rewrite_prompt(self, prompt):
            return prompt + "!"

    class Keep:
        @hookimpl
        def pando_rewrite_prompt(self, prompt):
            return None

    plugins = Plugins()
    plugins.register(Upper(), "upper")
    plugins.register(Keep(), "keep")
    plugins.register(Suffix(), "suffix")
    rewrite = plugins.hooks.pando_rewrite_prompt
    assert asyncio.run(rewrite.acall(prompt="hi", app=None, session_id="s")) == "HI!"
    assert rewrite(prompt="hi", app=None, session_id="s") == "HI!"
    with pytest.raises(ValueError):
        plugins.register(Keep(), "keep")


def test_the_entry_point_cache_sees_new_installs(plugin_path, pando_env, tmp_path):
    first = pando(plugin_path, pando_env, "plugins", "--json", cwd=tmp_path)
    assert "late" not in {row["name"] for row in json.loads(first.stdout)}
    # a cached scan skips importlib.metadata (and the email package it imports)
    env = dict(pando_env, PYTHONPATH=str(plugin_path))
    timed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pando_core", "plugins"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert timed.returncode == 0, timed.stderr
    # positive controls: the listing came out of the cached scan, and -X importtime really
    # recorded the imports (so the absence of importlib.metadata below means something)
    assert re.search(r"^good\s+1\.2\.3\s+loaded\b", timed.stdout, re.MULTILINE), timed.stdout
    assert re.search(r"^import time:.*\| pando_core\.plugins$", timed.stderr, re.MULTILINE), timed.stderr
    assert "importlib.metadata" not in timed.stderr
    # installing a distribution changes its directory: the cache is not used
    make_distribution(plugin_path, "pando-late", "2.0.0", {"late": "late_plugin"}, {"late_plugin": OTHER})
    second = pando(plugin_path, pando_env, "plugins", "--json", cwd=tmp_path)
    rows = {row["name"]: row for row in json.loads(second.stdout)}
    assert rows["late"]["version"] == "2.0.0" and rows["late"]["status"] == "loaded"


def test_a_context_scans_the_installed_plugins_once_and_reads_pando_plugins_from_its_env(
    monkeypatch, pando_workdir, pando_env
):
    from pando_core import plugins as plugins_module
    from pando_core.context import PandoContext

    scans = []

    def installed():
        scans.append(1)
        return {}

    monkeypatch.setattr(plugins_module, "installed_plugins", installed)
    context = PandoContext(pando_workdir, env=dict(pando_env, PANDO_PLUGINS="none"))
    assert scans == [1] and context.plugins.list() == []
    with pytest.raises(UsageError, match="unknown plugin"):
        PandoContext(pando_workdir, env=dict(pando_env, PANDO_PLUGINS="missing"))


def test_debug_turns_on_debug_logging(pando_env, tmp_path):
    code = (
        "import logging, sys\nfrom pando_core.cli import main\n"
        "main(sys.argv[1:])\nprint(logging.getLevelName(logging.getLogger().level))\n"
    )
    run = [sys.executable, "-c", code]
    kwargs = {"env": pando_env, "cwd": tmp_path, "capture_output": True, "text": True, "timeout": 60}
    assert subprocess.run([*run, "--plugins", "none", "--debug", "plugins"], **kwargs).stdout.splitlines()[-1] == "DEBUG"
    assert subprocess.run([*run, "--plugins", "none", "plugins"], **kwargs).stdout.splitlines()[-1] == "WARNING"
