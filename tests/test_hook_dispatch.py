"""The hook dispatch layer: coroutines, isolation of a failing plugin, strict mode, tracing, and
the core's permission check for plugin tools."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap

import pytest

from pando_core import hookimpl
from pando_core.agent.prompt import PromptSection
from pando_core.agent.tools.base import ToolResult
from pando_core.hooks import HookFailed
from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config
from tests.support.fake_dist import make_distribution


class AsyncPlugin:
    """Coroutine implementations of an event, a pipeline and a collect hook."""

    def __init__(self):
        self.messages = []

    @hookimpl
    async def pando_message_created(self, app, message):
        await asyncio.sleep(0)
        self.messages.append(message["role"])

    @hookimpl
    async def pando_rewrite_prompt(self, prompt):
        await asyncio.sleep(0)
        return prompt + " (async)"

    @hookimpl
    async def pando_system_prompt_sections(self, app, session_id, prompt):
        await asyncio.sleep(0)
        return [PromptSection("async", "ASYNC SECTION", order=80)]

    @hookimpl
    async def pando_session_ended(self, app, session, origin):
        await asyncio.sleep(0)
        self.messages.append("ended")


def test_async_event_pipeline_and_collect_hooks_inside_a_running_turn(make_app, model_server):
    plugin = AsyncPlugin()
    app = make_app(extra_plugins={"asyncp": plugin}, model_server=model_server)
    model_server.script(Reply.text("ok"))
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "hello"))
    assert result.status == "success", result.error
    request = model_server.requests[0]
    assert request["messages"][-1]["content"] == "hello (async)"
    assert "ASYNC SECTION" in request["messages"][0]["content"]
    assert plugin.messages == ["user", "assistant"]  # the event coroutines ran on the turn's loop
    app.sessions.end(session["id"])  # no loop runs here: run to completion
    assert plugin.messages[-1] == "ended"


class Raising:
    """Raises in one hook of each kind."""

    @hookimpl
    def pando_started(self, app, role):
        raise RuntimeError("boom at start")

    @hookimpl
    def pando_bus_setup(self, bus, app):
        raise RuntimeError("boom in bus setup")

    @hookimpl
    def pando_rewrite_prompt(self, prompt):
        raise ValueError("boom in a pipeline")

    @hookimpl
    def pando_system_prompt_sections(self, app, session_id, prompt):
        raise KeyError("boom in a collect hook")

    @hookimpl
    def pando_turn_finished(self, app, session_id):
        raise RuntimeError("boom in an event")

    @hookimpl
    def pando_shutdown(self, app):
        raise RuntimeError("boom at shutdown")


class Healthy:
    def __init__(self):
        self.seen = []

    @hookimpl
    def pando_started(self, app, role):
        self.seen.append("started")

    @hookimpl
    def pando_bus_setup(self, bus, app):
        self.seen.append("bus_setup")

    @hookimpl
    def pando_rewrite_prompt(self, prompt):
        return prompt + " [healthy]"

    @hookimpl
    def pando_system_prompt_sections(self, app, session_id, prompt):
        return [PromptSection("healthy", "HEALTHY", order=80)]

    @hookimpl
    def pando_turn_finished(self, app, session_id):
        self.seen.append("turn_finished")

    @hookimpl
    def pando_shutdown(self, app):
        self.seen.append("shutdown")


def test_a_raising_plugin_never_stops_the_others_or_the_turn(make_app, model_server):
    healthy = Healthy()
    app = make_app(extra_plugins={"raising": Raising(), "healthy": healthy}, model_server=model_server)
    assert healthy.seen == ["bus_setup", "started"]
    model_server.script(Reply.text("fine"))
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "hi"))
    assert result.status == "success" and result.response == "fine"
    assert model_server.requests[0]["messages"][-1]["content"] == "hi [healthy]"
    assert "HEALTHY" in model_server.requests[0]["messages"][0]["content"]
    app.shutdown()
    assert healthy.seen[-2:] == ["turn_finished", "shutdown"]
    errors = app.plugins.infos["raising"].hook_errors
    assert set(errors) == {
        "pando_started",
        "pando_bus_setup",
        "pando_rewrite_prompt",
        "pando_system_prompt_sections",
        "pando_turn_finished",
        "pando_shutdown",
    }
    assert errors["pando_rewrite_prompt"] == {"count": 1, "last_error": "ValueError: boom in a pipeline", "at": errors["pando_rewrite_prompt"]["at"]}


def test_a_plugin_raising_on_promotion_does_not_undo_it(make_pando_context):
    from pando_core.app import App, AppOptions

    first = App.create(make_pando_context(plugins=[]), AppOptions(startup_mode="run"))
    healthy = Healthy()
    second = App.create(make_pando_context(extra_plugins={"raising": Raising(), "healthy": healthy}), AppOptions(startup_mode="run"))
    try:
        assert second.role == "secondary" and healthy.seen == ["started"]
        first.shutdown()
        import time

        deadline = time.monotonic() + 10
        while "bus_setup" not in healthy.seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert second.role == "primary" and "bus_setup" in healthy.seen
        assert "pando_bus_setup" in second.plugins.infos["raising"].hook_errors
        second.store.sessions.create(title="written by the promoted primary")
    finally:
        second.shutdown()
        first.shutdown()


def test_strict_mode_reraises(make_app, model_server, monkeypatch):
    app = make_app(extra_plugins={"healthy": Healthy()}, model_server=model_server)
    app.plugins.register(Raising(), "raising")
    monkeypatch.setenv("PANDO_STRICT_PLUGINS", "1")
    with pytest.raises(HookFailed, match="raising.*pando_shutdown.*boom at shutdown"):
        app.plugins.hooks.pando_shutdown(app=app)


def test_a_pipeline_tool_error_is_a_refusal_not_an_error(make_app, model_server):
    from pando_core.agent.tools.base import ToolError

    class Refuser:
        @hookimpl
        def pando_rewrite_prompt(self, prompt):
            raise ToolError("prompts about secrets are refused")

    app = make_app(extra_plugins={"refuser": Refuser()}, model_server=model_server)
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "secrets"))
    assert result.status == "error" and "refused" in result.error
    assert "refuser" not in {name for name, info in app.plugins.infos.items() if info.hook_errors}


def test_wrappers_and_async_registration_hooks_are_refused_at_registration():
    from pando_core.plugins import Plugins

    class Wrapper:
        @hookimpl(wrapper=True)
        def pando_rewrite_prompt(self, prompt):
            return (yield)

    class AsyncConfig:
        @hookimpl
        async def pando_config_sections(self):
            return None

    plugins = Plugins()
    with pytest.raises(TypeError, match="wrapper"):
        plugins.register(Wrapper(), "wrapper")
    with pytest.raises(TypeError, match="must not be async"):
        plugins.register(AsyncConfig(), "asyncconfig")
    assert not plugins.pm.has_plugin("wrapper") and not plugins.pm.has_plugin("asyncconfig")


def test_tracing_shows_every_hook_call_with_its_plugin_and_time(make_app, model_server, capfd, monkeypatch):
    monkeypatch.setenv("PANDO_TRACE_HOOKS", "1")
    app = make_app(extra_plugins={"healthy": Healthy()}, model_server=model_server)
    model_server.script(Reply.text("ok"))
    session = app.sessions.create(title="t")
    asyncio.run(app.coder_agent.run(session["id"], "hi"))
    err = capfd.readouterr().err
    assert "pando hook pando_rewrite_prompt [pipeline] plugin=healthy" in err
    assert "pando hook pando_system_prompt_sections [collect] plugin=healthy" in err
    assert "pando hook pando_turn_finished [event] plugin=healthy" in err
    assert " ms -> " in err


FAILING_PLUGIN = textwrap.dedent(
    """
    from pando_core import hookimpl

    @hookimpl
    def pando_turn_finished(app, session_id):
        raise RuntimeError("the plugin broke")
    """
)

UNASKED_TOOL_PLUGIN = textwrap.dedent(
    """
    from pathlib import Path

    from pando_core import hookimpl
    from pando_core.agent.tools.base import ToolResult


    class Touch:
        name = "touch_file"
        description = "create a file"
        parameters = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}

        async def run(self, args, ctx):  # no permission code at all
            (ctx.workdir / args["path"]).write_text("touched")
            return ToolResult("touched " + args["path"])


    @hookimpl
    def pando_register_tools(app):
        return [Touch()]
    """
)


def _pando(pando_env, site, workdir, *args):
    env = dict(pando_env, PYTHONPATH=str(site) + os.pathsep + pando_env.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "pando_core", *args], env=env, cwd=workdir, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_pando_plugins_shows_the_last_error_of_a_hook_in_a_run(tmp_path, pando_env, pando_workdir, model_server):
    site = make_distribution(tmp_path / "site", "pando-failing", "0.1.0", {"failing": "failing_plugin"}, {"failing_plugin": FAILING_PLUGIN})
    write_model_config(pando_workdir, model_server.base_url)
    model_server.script(Reply.text("the answer"))
    run = _pando(pando_env, site, pando_workdir, "--plugins", "failing", "run", "-f", "json", "hi")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["response"] == "the answer"
    assert "plugin 'failing' failed in pando_turn_finished: RuntimeError: the plugin broke" in run.stderr
    listing = _pando(pando_env, site, pando_workdir, "--plugins", "failing", "plugins", "--json")
    (info,) = [row for row in json.loads(listing.stdout) if row["name"] == "failing"]
    assert info["hook_errors"]["pando_turn_finished"]["last_error"] == "RuntimeError: the plugin broke"
    text = _pando(pando_env, site, pando_workdir, "--plugins", "failing", "plugins")
    assert "pando_turn_finished failed 1x, last: RuntimeError: the plugin broke" in text.stdout


@pytest.mark.slow
def test_a_plugin_tool_without_permission_code_is_refused_without_yolo(tmp_path, pando_env, pando_workdir, model_server):
    site = make_distribution(tmp_path / "site", "pando-toucher", "0.1.0", {"toucher": "toucher_plugin"}, {"toucher_plugin": UNASKED_TOOL_PLUGIN})
    write_model_config(pando_workdir, model_server.base_url)
    model_server.script(Reply.tool("touch_file", {"path": "made.txt"}))  # a denial ends the turn
    run = _pando(pando_env, site, pando_workdir, "--plugins", "toucher", "run", "-f", "json", "touch it")
    out = json.loads(run.stdout)
    assert out["status"] == "permission_denied" and run.returncode == 1
    assert not (pando_workdir / "made.txt").exists()
    model_server.script(Reply.tool("touch_file", {"path": "made.txt"}), Reply.text("done"))
    run = _pando(pando_env, site, pando_workdir, "--plugins", "toucher", "run", "--yolo", "-f", "json", "touch it")
    assert json.loads(run.stdout)["status"] == "success"
    assert (pando_workdir / "made.txt").read_text() == "touched"


def test_dispatch_keeps_plugin_order_and_result_shapes(make_app):
    class First:
        @hookimpl
        def pando_rewrite_prompt(self, prompt):
            return prompt + "1"

        @hookimpl
        def pando_enrich_context(self, prompt):
            return "a"

    class Second:
        @hookimpl
        def pando_rewrite_prompt(self, prompt):
            return prompt + "2"

        @hookimpl
        def pando_enrich_context(self, prompt):
            return None

    app = make_app(extra_plugins={"first": First(), "second": Second()})
    hooks = app.plugins.hooks
    assert hooks.pando_rewrite_prompt(prompt="p", app=app, session_id="s") == "p12"
    assert asyncio.run(hooks.pando_rewrite_prompt.acall(prompt="p", app=app, session_id="s")) == "p12"
    assert hooks.pando_enrich_context(app=app, session_id="s", prompt="p") == ["a"]
    assert hooks.pando_message_created(app=app, message={}) is None
    assert hooks.pando_rewrite_prompt.plugin_names() == ["first", "second"]
    assert ToolResult("x").content == "x"


def test_a_raising_plugin_in_a_first_result_hook_falls_through_to_the_next(monkeypatch):
    """No core hook is first-result today; a plugin that declares its own hookspecs may make one.
    The same isolation holds: the raising plugin is recorded and the next plugin's result wins."""
    import pluggy

    from pando_core.hooks import FIRST, HookCaller, kind
    from pando_core.plugins import Plugins

    class Specs:
        @pluggy.HookspecMarker("pando")
        @kind(FIRST)
        def pando_test_pick(self, options):
            """Pick one of *options*."""

    class Raises:
        @hookimpl
        def pando_test_pick(self, options):
            raise LookupError("no pick")

    class Declines:
        @hookimpl
        def pando_test_pick(self, options):
            return None

    class Picks:
        @hookimpl
        def pando_test_pick(self, options):
            return options[-1]

    class Never:
        def __init__(self):
            self.called = False

        @hookimpl
        def pando_test_pick(self, options):
            self.called = True
            return options[0]

    plugins = Plugins()
    plugins.pm.add_hookspecs(Specs)
    never = Never()
    for name, plugin in (("raises", Raises()), ("declines", Declines()), ("picks", Picks()), ("never", never)):
        plugins.register(plugin, name)
    caller = HookCaller(plugins, "pando_test_pick", Specs.pando_test_pick.__pando_hook__)
    assert caller(options=["a", "b"]) == "b"
    assert asyncio.run(caller.acall(options=["a", "c"])) == "c"
    assert never.called is False  # the first non-None result ends the call
    errors = plugins.infos["raises"].hook_errors["pando_test_pick"]
    assert errors["count"] == 2 and errors["last_error"] == "LookupError: no pick"
    monkeypatch.setenv("PANDO_STRICT_PLUGINS", "1")
    with pytest.raises(HookFailed):
        caller(options=["a"])
