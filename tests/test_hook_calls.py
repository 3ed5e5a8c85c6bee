"""Every hookspec is called by the core with its documented arguments on its documented role
(datasette style: one ``test_hook_<name>`` each; tests/test_hook_docs.py checks that they exist).

A recording plugin implements every hook; each test drives the part of pando that should call one
hook and checks the call. Hooks that need two processes (a promotion, another instance's writes)
are also exercised through real processes in tests/test_platform_instances.py.
"""

from __future__ import annotations

import asyncio
import time

from pando_core import hookimpl
from pando_core.agent.prompt import PromptSection
from pando_core.agent.tools.base import ToolResult
from pando_core.background import ThreadedService
from pando_core.config import ConfigSection, Field
from pando_core.db import Component, Migration, Repository, read, write
from pando_core.testing.model_server import Reply


class NoteRepository(Repository):
    name = "rec_notes"

    @write
    def add(self, tx, *, body: str) -> dict:
        tx.raw.execute("INSERT INTO rec_notes (body) VALUES (?)", (body,))
        tx.changed("rec_notes", "insert", body)
        return {"body": body}

    @read
    def count(self, tx) -> int:
        return tx.raw.execute("SELECT count(*) FROM rec_notes").fetchone()[0]


NOTES = Component("rec", [Migration(1, "notes", ["CREATE TABLE rec_notes (body TEXT)"])], [NoteRepository])


class Echo:
    name = "rec_echo"
    description = "echo a word"
    parameters = {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]}
    read_only = True

    async def run(self, args, ctx):
        return ToolResult(f"echo {args['word']}")


class Ticker(ThreadedService):
    name = "rec.ticker"

    def __init__(self, recorder):
        self.recorder = recorder

    def run(self, app, stop):
        self.recorder.record("service-run", role=app.role)
        stop.wait()
        self.recorder.record("service-stopped")


class Recorder:
    """Implements every hook; remembers each call's arguments (and the role it ran on)."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def record(self, hook, **kwargs):
        self.calls.append((hook, kwargs))

    def called(self, hook):
        return [kwargs for name, kwargs in self.calls if name == hook]

    @hookimpl
    def pando_config_sections(self):
        self.record("pando_config_sections")
        return ConfigSection("rec", {"greeting": Field("str", "hi", "a greeting")})

    @hookimpl
    def pando_db_components(self):
        self.record("pando_db_components")
        return NOTES

    @hookimpl
    def pando_register_commands(self, cli):
        self.record("pando_register_commands", cli=cli)

        @cli.command("rec-hello")
        def hello():
            print("hello")

    @hookimpl
    def pando_register_tools(self, app):
        self.record("pando_register_tools", role=app.role)
        return [Echo()]

    @hookimpl
    def pando_register_providers(self):
        self.record("pando_register_providers")
        return {}

    @hookimpl
    def pando_system_prompt_sections(self, app, session_id, prompt):
        self.record("pando_system_prompt_sections", session_id=session_id, prompt=prompt)
        return [PromptSection("rec", "REC SECTION", order=70)]

    @hookimpl
    def pando_mcp_server_tools(self, app):
        self.record("pando_mcp_server_tools")
        return [Echo()]

    @hookimpl
    def pando_slash_commands(self, app):
        self.record("pando_slash_commands")
        return {"/rec": lambda app, args: f"rec {args}"}

    @hookimpl
    def pando_app_subsystems(self, app):
        self.record("pando_app_subsystems")
        return {"rec": {"attached": True}}

    @hookimpl
    def pando_bus_methods(self, app):
        self.record("pando_bus_methods", role=app.role)
        return {"rec.count": lambda params: {"notes": app.store.rec_notes.count(), "asked": params.get("x")}}

    @hookimpl
    def pando_services(self, app):
        self.record("pando_services")
        return [Ticker(self)]

    @hookimpl
    def pando_bus_setup(self, bus, app):
        self.record("pando_bus_setup", bus=bus, role=app.role)

    @hookimpl
    def pando_started(self, app, role):
        self.record("pando_started", role=role)

    @hookimpl
    def pando_promoted(self, app, epoch):
        self.record("pando_promoted", epoch=epoch, role=app.role)

    @hookimpl
    def pando_shutdown(self, app):
        self.record("pando_shutdown")

    @hookimpl
    def pando_conversation_start(self, app, session_id, prompt):
        self.record("pando_conversation_start", session_id=session_id, prompt=prompt)
        return "START"

    @hookimpl
    def pando_rewrite_prompt(self, app, session_id, prompt):
        self.record("pando_rewrite_prompt", session_id=session_id, prompt=prompt)
        return prompt + " [rewritten]"

    @hookimpl
    def pando_enrich_context(self, app, session_id, prompt):
        self.record("pando_enrich_context", prompt=prompt)
        return "ENRICHED"

    @hookimpl
    def pando_select_provider(self, app, session_id, model):
        self.record("pando_select_provider", model=model)

    @hookimpl
    def pando_filter_prompt_section(self, app, name, text):
        self.record("pando_filter_prompt_section", name=name)
        return text.replace("REC SECTION", "REC SECTION (filtered)") if name == "rec" else None

    @hookimpl
    def pando_check_capability(self, app, capability, enabled):
        self.record("pando_check_capability", capability=capability, enabled=enabled)
        return False if capability == "fetch" else None

    @hookimpl
    def pando_compose_prompt(self, app, sections):
        self.record("pando_compose_prompt", names=[s.name for s in sections])

    @hookimpl
    def pando_filter_system_prompt(self, app, session_id, prompt):
        self.record("pando_filter_system_prompt", prompt=prompt)
        return prompt + "\nSYSTEM TAIL"

    @hookimpl
    def pando_before_tool_call(self, app, session_id, tool_name, arguments):
        self.record("pando_before_tool_call", tool_name=tool_name, arguments=dict(arguments))
        return dict(arguments, word=arguments["word"] + "!") if tool_name == "rec_echo" else None

    @hookimpl
    def pando_after_tool_call(self, app, session_id, tool_name, arguments, result):
        self.record("pando_after_tool_call", tool_name=tool_name, content=result.content)
        return result.content + " (after)" if tool_name == "rec_echo" else None

    @hookimpl
    def pando_session_created(self, app, session):
        self.record("pando_session_created", session=session)

    @hookimpl
    def pando_session_restored(self, app, session):
        self.record("pando_session_restored", session=session)

    @hookimpl
    def pando_session_ended(self, app, session, origin):
        self.record("pando_session_ended", session=session, origin=origin, role=app.role)

    @hookimpl
    def pando_changes_committed(self, app, changes, resync):
        self.record("pando_changes_committed", changes=list(changes), resync=resync, role=app.role)

    @hookimpl
    def pando_message_created(self, app, message):
        self.record("pando_message_created", role=message["role"])

    @hookimpl
    def pando_turn_finished(self, app, session_id, response, finish_reason, usage):
        self.record("pando_turn_finished", session_id=session_id, response=response, finish_reason=finish_reason, usage=usage)

    @hookimpl
    def pando_turn_stopping(self, app, session_id, response, continuation):
        self.record("pando_turn_stopping", session_id=session_id, response=response, continuation=continuation)


def _app(make_app, model_server=None, config=""):
    recorder = Recorder()
    app = make_app(extra_plugins={"rec": recorder}, model_server=model_server, config=config)
    return app, recorder


def _turn(make_app, model_server):
    """One agent turn with a call of the plugin's tool."""
    app, recorder = _app(make_app, model_server)
    model_server.script(Reply.tool("rec_echo", {"word": "hey"}), Reply.text("done"))
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "do it"))
    assert result.status == "success", result.error
    return app, recorder, session, result


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# -- registration ----------------------------------------------------------------------------------


def test_hook_pando_config_sections(make_app):
    app, recorder = _app(make_app)
    assert recorder.called("pando_config_sections")
    assert app.config.section("rec")["greeting"] == "hi"


def test_hook_pando_db_components(make_app):
    app, recorder = _app(make_app)
    assert recorder.called("pando_db_components")
    app.store.rec_notes.add(body="x")
    assert app.store.rec_notes.count() == 1


def test_hook_pando_register_commands(make_pando_context):
    from pando_core.cli import build_cli

    recorder = Recorder()
    context = make_pando_context(extra_plugins={"rec": recorder})
    cli = build_cli(context)
    (call,) = recorder.called("pando_register_commands")
    assert call["cli"] is cli
    assert "rec-hello" in [command.name for command in cli.registered_commands]


def test_hook_pando_register_tools(make_app, model_server):
    app, recorder, _, result = _turn(make_app, model_server)
    assert recorder.called("pando_register_tools")[0]["role"] == "primary"
    assert result.tool_calls[0]["name"] == "rec_echo" and not result.tool_calls[0]["is_error"]


def test_hook_pando_register_providers(make_app):
    from pando_core.agent.models import resolve_model

    app, recorder = _app(make_app, config='[providers.local]\ntype = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n')
    app.provider_for(resolve_model(app.config, "local/m"))
    assert recorder.called("pando_register_providers") == [{}]


def test_hook_pando_system_prompt_sections(make_app, model_server):
    app, recorder, session, _ = _turn(make_app, model_server)
    (call,) = recorder.called("pando_system_prompt_sections")
    assert call["session_id"] == session["id"]
    assert "REC SECTION" in model_server.requests[0]["messages"][0]["content"]


def test_hook_pando_mcp_server_tools(make_pando_context, capsys):
    from pando_core.commands.tools_cmd import tools_command

    recorder = Recorder()
    make_pando_context(extra_plugins={"rec": recorder})
    tools_command(as_json=False, mcp_server=True)
    assert recorder.called("pando_mcp_server_tools")
    assert "rec_echo" in capsys.readouterr().out


def test_hook_pando_slash_commands(make_app):
    from pando_core.frontends.interactive import InteractiveSession

    app, recorder = _app(make_app)
    ui = InteractiveSession()
    ui.attach(app)
    commands = asyncio.run(ui._load_plugin_commands())
    assert recorder.called("pando_slash_commands")
    assert "/rec" in commands


def test_hook_pando_app_subsystems(make_app):
    app, recorder = _app(make_app)
    assert recorder.called("pando_app_subsystems")
    assert app.rec == {"attached": True}


# -- bus and role lifecycle ------------------------------------------------------------------------


def test_hook_pando_bus_methods(make_app):
    app, recorder = _app(make_app)
    assert recorder.called("pando_bus_methods") == [{"role": "primary"}]
    app.store.rec_notes.add(body="a")
    assert app.call_primary("rec.count", {"x": 1}) == {"notes": 1, "asked": 1}
    assert "rec.count" in app.ipc_bus.methods()


def test_hook_pando_services(make_app):
    app, recorder = _app(make_app)
    assert recorder.called("pando_services")
    _wait(lambda: recorder.called("service-run"))
    assert recorder.called("service-run") == [{"role": "primary"}]
    assert app.services.get("rec.ticker") is not None
    app.shutdown()
    assert recorder.called("service-stopped")
    assert app.services.get("rec.ticker") is None


def test_hook_pando_bus_setup(make_app):
    app, recorder = _app(make_app)
    (call,) = recorder.called("pando_bus_setup")
    assert call["bus"] is app.runtime.bus and call["role"] == "primary"


def test_hook_pando_started(make_app):
    _, recorder = _app(make_app)
    assert recorder.called("pando_started") == [{"role": "primary"}]


def test_hook_pando_promoted(make_pando_context, pando_workdir):
    """A secondary App in this process takes over when the primary App shuts down."""
    from pando_core.app import App, AppOptions

    first = App.create(make_pando_context(plugins=[]), AppOptions(startup_mode="run"))
    recorder = Recorder()
    second = App.create(make_pando_context(extra_plugins={"rec": recorder}), AppOptions(startup_mode="run"))
    try:
        assert second.role == "secondary"
        assert recorder.called("pando_bus_setup") == []
        first.shutdown()
        _wait(lambda: recorder.called("pando_promoted"))
        (call,) = recorder.called("pando_promoted")
        assert call["role"] == "primary" and call["epoch"] == 2
        assert recorder.called("pando_bus_setup")[0]["role"] == "primary"
        _wait(lambda: recorder.called("service-run"))
    finally:
        second.shutdown()
        first.shutdown()


def test_hook_pando_shutdown(make_app):
    app, recorder = _app(make_app)
    assert recorder.called("pando_shutdown") == []
    app.shutdown()
    app.shutdown()
    assert recorder.called("pando_shutdown") == [{}]


# -- pipelines -------------------------------------------------------------------------------------


def test_hook_pando_conversation_start(make_app, model_server):
    _, recorder, session, _ = _turn(make_app, model_server)
    assert recorder.called("pando_conversation_start") == [{"session_id": session["id"], "prompt": "do it"}]
    assert model_server.requests[0]["messages"][-1]["content"].startswith("START\n\ndo it")


def test_hook_pando_rewrite_prompt(make_app, model_server):
    _, recorder, _, _ = _turn(make_app, model_server)
    assert recorder.called("pando_rewrite_prompt")[0]["prompt"] == "START\n\ndo it"
    assert "do it [rewritten]" in model_server.requests[0]["messages"][-1]["content"]


def test_hook_pando_enrich_context(make_app, model_server):
    _, recorder, _, _ = _turn(make_app, model_server)
    assert recorder.called("pando_enrich_context")[0]["prompt"].endswith("[rewritten]")
    assert model_server.requests[0]["messages"][-1]["content"].endswith("[rewritten]\n\nENRICHED")


def test_hook_pando_select_provider(make_app, model_server):
    _, recorder, _, _ = _turn(make_app, model_server)
    assert recorder.called("pando_select_provider") == [{"model": "scripted/test-model"}]


def test_hook_pando_filter_prompt_section(make_app, model_server):
    _, recorder, _, _ = _turn(make_app, model_server)
    names = [call["name"] for call in recorder.called("pando_filter_prompt_section")]
    assert "identity" in names and "rec" in names
    assert "REC SECTION (filtered)" in model_server.requests[0]["messages"][0]["content"]


def test_hook_pando_check_capability(make_app, model_server):
    _, recorder, _, _ = _turn(make_app, model_server)
    asked = {call["capability"] for call in recorder.called("pando_check_capability")}
    assert {"bash", "fetch", "rec_echo"} <= asked
    offered = [tool["function"]["name"] for tool in model_server.requests[0]["tools"]]
    assert "fetch" not in offered and "rec_echo" in offered


def test_hook_pando_compose_prompt(make_app, model_server):
    _, recorder, _, _ = _turn(make_app, model_server)
    names = recorder.called("pando_compose_prompt")[0]["names"]
    assert names[0] == "identity" and "rec" in names


def test_hook_pando_filter_system_prompt(make_app, model_server):
    _, recorder, _, _ = _turn(make_app, model_server)
    assert "REC SECTION" in recorder.called("pando_filter_system_prompt")[0]["prompt"]
    assert model_server.requests[0]["messages"][0]["content"].endswith("SYSTEM TAIL")


def test_hook_pando_before_tool_call(make_app, model_server):
    _, recorder, _, _ = _turn(make_app, model_server)
    assert recorder.called("pando_before_tool_call") == [{"tool_name": "rec_echo", "arguments": {"word": "hey"}}]


def test_hook_pando_after_tool_call(make_app, model_server):
    _, recorder, _, _ = _turn(make_app, model_server)
    assert recorder.called("pando_after_tool_call") == [{"tool_name": "rec_echo", "content": "echo hey!"}]
    tool_message = model_server.requests[1]["messages"][-1]
    assert tool_message["content"] == "echo hey! (after)"


# -- events ----------------------------------------------------------------------------------------


def test_hook_pando_session_created(make_app):
    app, recorder = _app(make_app)
    session = app.sessions.create(title="t")
    assert [call["session"]["id"] for call in recorder.called("pando_session_created")] == [session["id"]]
    app.sessions.create(title="child", parent_session_id=session["id"])
    assert len(recorder.called("pando_session_created")) == 1  # top-level sessions only


def test_hook_pando_session_restored(make_app):
    app, recorder = _app(make_app)
    session = app.sessions.create(title="t")
    app.sessions.restore(session["id"][:8])
    assert recorder.called("pando_session_restored")[0]["session"]["id"] == session["id"]


def test_hook_pando_session_ended(make_app, model_server):
    app, recorder, session, _ = _turn(make_app, model_server)
    assert app.sessions.end(session["id"]) is True
    (call,) = recorder.called("pando_session_ended")
    assert call["session"]["id"] == session["id"] and call["origin"] == app.instance_id and call["role"] == "primary"
    assert call["session"]["ended_at"] >= call["session"]["updated_at"]
    assert app.sessions.end(session["id"]) is False  # nothing happened since: not ended twice
    assert len(recorder.called("pando_session_ended")) == 1


def test_hook_pando_changes_committed(make_app):
    app, recorder = _app(make_app)
    app.store.rec_notes.add(body="n1")
    _wait(lambda: any(c.table == "rec_notes" for call in recorder.called("pando_changes_committed") for c in call["changes"]))
    change = next(c for call in recorder.called("pando_changes_committed") for c in call["changes"] if c.table == "rec_notes")
    assert (change.kind, change.ids, change.writer) == ("insert", ("n1",), app.instance_id)
    assert all(call["role"] == "primary" and call["resync"] is False for call in recorder.called("pando_changes_committed"))


def test_hook_pando_message_created(make_app, model_server):
    _, recorder, _, _ = _turn(make_app, model_server)
    assert [call["role"] for call in recorder.called("pando_message_created")] == ["user", "assistant", "tool", "assistant"]


def test_hook_pando_turn_finished(make_app, model_server):
    _, recorder, session, result = _turn(make_app, model_server)
    (call,) = recorder.called("pando_turn_finished")
    assert call["session_id"] == session["id"] and call["response"] == "done" and call["finish_reason"] == result.finish_reason
    assert set(call["usage"]) == {"tokens_in", "tokens_out", "cost"}


class GoOnOnce:
    """Asks the agent to go on after the caller's turn, then lets it stop."""

    @hookimpl
    async def pando_turn_stopping(self, session_id, response, continuation):
        return f"you said {response!r}; check it once more" if continuation == 0 else None


def test_hook_pando_turn_stopping(make_app, model_server):
    recorder = Recorder()
    app = make_app(extra_plugins={"rec": recorder, "go-on": GoOnOnce()}, model_server=model_server)
    model_server.script(Reply.tool("rec_echo", {"word": "hey"}), Reply.text("done"), Reply.text("checked"))
    session = app.sessions.create(title="t")

    result = asyncio.run(app.coder_agent.run(session["id"], "do it"))

    assert result.status == "success" and result.response == "checked" and result.continuations == 1
    assert len(result.tool_calls) == 1 and result.requests == 3  # the spend of both turns
    calls = recorder.called("pando_turn_stopping")
    assert [(c["response"], c["continuation"]) for c in calls] == [("done", 0), ("checked", 1)]
    assert [c["response"] for c in recorder.called("pando_turn_finished")] == ["done", "checked"]
    user = [m for m in app.messages.list(session["id"]) if m["role"] == "user"]
    assert len(user) == 2 and user[1]["parts"][0]["data"]["text"].startswith("you said 'done'; check it once more")


def test_no_stopping_hook_call_after_a_failed_turn(make_app, model_server):
    recorder = Recorder()
    app = make_app(extra_plugins={"rec": recorder, "go-on": GoOnOnce()}, model_server=model_server)
    model_server.script(Reply.error(400))
    session = app.sessions.create(title="t")

    result = asyncio.run(app.coder_agent.run(session["id"], "do it"))

    assert result.status == "error" and recorder.called("pando_turn_stopping") == []
