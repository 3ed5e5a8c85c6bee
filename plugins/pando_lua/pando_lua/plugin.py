"""The pluggy wiring of pando-lua: every hook site of the core routed to the sandboxed Lua engine.

Tool filters run for every tool call (built-in, plugin and MCP tools); the "server" of a built-in
or plugin tool is the tool's own name, so ``bash-input`` filters bash arguments.  Each script's
lookup for a call of tool ``T`` is ``T-input`` (or ``T_input``), then ``builtin-input`` (the server
name the engine documents for built-in tools), then ``global-input``; ``-output`` likewise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pando_core import hookimpl
from pando_core.config import ConfigSection, Field

if TYPE_CHECKING:
    from pando_core.plugin_api import PluginApp

# The declared [lua] section: the one place the defaults are written (LuaConfig's come from here).
# It stays in this module, which every `pando` start imports, so that config.py is loaded only when
# an App is built.
SECTION = ConfigSection(
    "lua",
    {
        # "any": a list of paths, or one path as a string (the Go original's script_path)
        "scripts": Field("any", [], "Lua files to load (relative to the working directory)", aliases=("script_path",)),
        # "any": durations ("500ms") and sizes ("32MiB") are parsed and checked by LuaConfig.from_dict
        "timeout": Field("any", 1.0, "seconds one hook call may run (or 500ms, 2s, 1m)"),
        "strict": Field(
            "bool", False, "errors refuse the operation instead of passing data through", aliases=("strict_mode",)
        ),
        "hot_reload": Field("bool", True, "reload a script when its file changes"),
        "memory_limit": Field("any", 32 * 1024 * 1024, "bytes of Lua memory (or 64MiB, 1g)"),
    },
    "Lua filters and hooks",
)


class LuaSubsystem:
    """``app.lua``: the engine, called by the hooks below.  A strict-mode failure raises the engine's
    LuaFilterError, a core ToolError: it refuses the operation.  With ``hot_reload`` the engine itself
    checks the scripts' files before each call."""

    def __init__(self, engine, fallback: str) -> None:  # noqa: ANN001
        self.engine = engine
        self._fallback = fallback  # the engine's BUILTIN_SERVER (engine.py is not imported at start-up)

    def hook(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        return self.engine.call_hook(name, data)

    def filter(self, name: str, data: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        return self.engine.call_filter(name, data, context=context, fallback=self._fallback)


def _lua(app) -> LuaSubsystem | None:  # noqa: ANN001
    return getattr(app, "lua", None)


@hookimpl
def pando_config_sections():
    return SECTION


@hookimpl
def pando_app_subsystems(app: PluginApp):
    from .config import LuaConfig

    config = LuaConfig.from_dict(app.config.section("lua"))  # LuaConfigError is a core ConfigError
    if not config.scripts:
        # nothing to run: no engine, worker thread or Lua state; every hook returns at once (no app.lua)
        return None

    import logging

    from pando_core.errors import ConfigError

    from .engine import BUILTIN_SERVER, LuaEngine, LuaLoadError
    from .helpers import LuaHelpers

    helpers = LuaHelpers(
        workdir=str(app.workdir),
        config=app.config.redacted(),
        tools=lambda: [tool.name for tool in app.coder_agent.tools()],
    )
    try:
        engine = LuaEngine.from_config(
            config, base_dir=app.workdir, helpers=helpers, logger=logging.getLogger("pando.lua")
        )
    except LuaLoadError as exc:
        raise ConfigError(f"lua (strict): a script failed to load, refusing to start:\n{exc}") from None
    return {"lua": LuaSubsystem(engine, BUILTIN_SERVER)}


@hookimpl
def pando_shutdown(app: PluginApp):
    subsystem = _lua(app)
    if subsystem is not None:
        subsystem.engine.close()


@hookimpl
def pando_session_created(app: PluginApp, session):
    if (lua := _lua(app)) is not None:
        lua.hook(
            "session_start",
            {"session_id": session["id"], "title": session["title"], "created_at": session["created_at"]},
        )


@hookimpl
def pando_session_restored(app: PluginApp, session):
    if (lua := _lua(app)) is not None:
        lua.hook(
            "session_restore",
            {
                "session_id": session["id"],
                "title": session["title"],
                "message_count": session["message_count"],
            },
        )


@hookimpl
def pando_session_ended(app: PluginApp, session, origin):
    # the primary also hears of sessions other instances ended; a Lua script reacts to its own
    if origin != app.instance_id:
        return
    if (lua := _lua(app)) is not None:
        lua.hook(
            "session_end",
            {
                "session_id": session["id"],
                "title": session["title"],
                "message_count": session["message_count"],
            },
        )


@hookimpl
def pando_conversation_start(app: PluginApp, session_id, prompt):
    if (lua := _lua(app)) is None:
        return None
    result = lua.hook(
        "conversation_start", {"session_id": session_id, "is_new_session": True, "message_count": 0}
    )
    context = result.get("injected_context")
    return context if isinstance(context, str) and context else None


@hookimpl
def pando_rewrite_prompt(app: PluginApp, session_id, prompt):
    if (lua := _lua(app)) is None:
        return None
    result = lua.hook("user_prompt", {"session_id": session_id, "user_content": prompt})
    content = result.get("modified_content")
    return content if isinstance(content, str) and content else None


@hookimpl
def pando_select_provider(app: PluginApp, session_id, model):
    if (lua := _lua(app)) is None:
        return None
    from pando_core.agent.models import resolve_model
    from pando_core.errors import ConfigError

    # ``model`` is empty unless --model was given: show the script the model the turn would use
    try:
        resolved = resolve_model(app.config, model or None)
        provider, model_id = resolved.provider_name, resolved.model_id
    except ConfigError:
        provider, _, model_id = (model or "").partition("/")
    result = lua.hook(
        "provider_select",
        {"provider": provider, "model": model_id, "agent_name": "coder", "session_id": session_id},
    )
    chosen = result.get("model_ref")
    return chosen if isinstance(chosen, str) and chosen else None


@hookimpl
def pando_filter_prompt_section(app: PluginApp, name, text):
    if (lua := _lua(app)) is None:
        return None
    result = lua.hook(
        "template_section", {"section_name": name, "section_content": text, "agent_name": "coder"}
    )
    content = result.get("section_content")
    return content if isinstance(content, str) else None


@hookimpl
def pando_check_capability(app: PluginApp, capability, enabled):
    if (lua := _lua(app)) is None:
        return None
    result = lua.hook(
        "capability_check", {"capability": capability, "available": enabled, "agent_name": "coder"}
    )
    available = result.get("available")
    return available if isinstance(available, bool) else None


@hookimpl
def pando_compose_prompt(app: PluginApp, sections):
    if (lua := _lua(app)) is None:
        return None
    from pando_core.agent.prompt import PromptSection

    data = {"sections": [{"name": s.name, "content": s.text} for s in sections], "agent_name": "coder"}
    result = lua.hook("prompt_compose", data)
    new = result.get("sections")
    if not isinstance(new, list):
        return None
    return [
        PromptSection(str(item.get("name", "")), str(item.get("content", "")))
        for item in new
        if isinstance(item, dict)
    ]


@hookimpl
def pando_filter_system_prompt(app: PluginApp, session_id, prompt):
    if (lua := _lua(app)) is None:
        return None
    result = lua.hook(
        "system_prompt", {"system_prompt": prompt, "agent_name": "coder", "session_id": session_id}
    )
    text = result.get("system_prompt")
    return text if isinstance(text, str) and text else None


@hookimpl
def pando_before_tool_call(app: PluginApp, session_id, tool_name, arguments):
    if (lua := _lua(app)) is None:
        return None
    return lua.filter(
        f"{tool_name}-input", dict(arguments), {"tool_name": tool_name, "session_id": session_id}
    )


@hookimpl
def pando_after_tool_call(app: PluginApp, session_id, tool_name, arguments, result):
    if (lua := _lua(app)) is None:  # every tool call: nothing else before this check
        return None
    from pando_core.agent.tools.base import ToolError, ToolResult

    try:
        out = lua.filter(
            f"{tool_name}-output",
            {"output": result.content},
            {"tool_name": tool_name, "session_id": session_id, "parameters": dict(arguments)},
        )
    except ToolError as exc:
        # strict mode: the agent loop does not catch errors raised after the tool ran, so the
        # failure becomes the call's (error) result instead of ending the turn with a traceback
        return ToolResult(str(exc), True, result.metadata)
    text = out.get("output")
    if isinstance(text, str) and text != result.content:
        return ToolResult(text, result.is_error, result.metadata)
    return None


@hookimpl
def pando_turn_finished(app: PluginApp, session_id, response, finish_reason, usage):
    if (lua := _lua(app)) is not None:
        lua.hook(
            "agent_response_finish",
            {
                "session_id": session_id,
                "finish_reason": finish_reason,
                "input_tokens": usage.get("tokens_in", 0),
                "output_tokens": usage.get("tokens_out", 0),
            },
        )


@hookimpl
def pando_register_commands(cli):
    from .cli import build_cli

    cli.add_typer(build_cli(), name="lua", help="Check and try Lua hook scripts.")
