"""Every hook a Pando plugin may implement.

A plugin is a module (or object) with functions decorated by ``pando_core.hookimpl`` whose names
match the specs below. Arguments are passed by keyword, so an implementation may accept only the
arguments it needs.

Each spec declares its kind (``pando_core.hooks``): an *event* calls every implementation; a
*collect* hook gathers the non-None results in plugin order; a *pipeline* threads a value through
the implementations in plugin order (returning None keeps it). Any implementation may be an
``async def`` unless the spec is ``sync_only``. A plugin's exception is isolated: logged, counted,
shown in ``pando plugins``, and the other plugins still run (``PANDO_STRICT_PLUGINS=1``
re-raises); a ``ToolError`` raised by a pipeline is a deliberate refusal and is passed on, and so
is a ``ConfigError`` / ``UsageError`` from any hook.

Roles: "primary" is the instance that holds the working directory's lock and writes the database;
"secondary" instances proxy their writes to it over the IPC bus. Unless a hook says otherwise it is
called on every instance, whatever its role. ``app`` is a ``pando_core.plugin_api.PluginApp``.

The plugin-author documentation of each hook, with an example, is ``docs/plugin-hooks.md``; a test
fails when a hook here is missing there, is never called by the core, or has no ``test_hook_<name>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

from .hooks import COLLECT, EVENT, PIPELINE, kind

if TYPE_CHECKING:
    from .changes import CommittedChange
    from .plugin_api import PluginApp

hookspec = pluggy.HookspecMarker("pando")
hookimpl = pluggy.HookimplMarker("pando")


# --------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------


@hookspec
@kind(COLLECT, sync_only=True)
def pando_config_sections() -> Any:
    """Declare this plugin's configuration sections.

    When: once, when the configuration is loaded (every command). Role: any.
    Returns: a ``pando_core.config.ConfigSection`` or a list of them. Values from config files and
    ``PANDO_<SECTION>__<KEY>`` environment variables are validated against the declared types.
    A field's ``aliases`` are other names a config file may give it under (the loader moves them
    to the field's own key).
    """


@hookspec
@kind(COLLECT, sync_only=True)
def pando_db_components() -> Any:
    """Declare database tables (as versioned migrations) and repositories.

    When: when the database is opened. Role: any; only the primary applies migrations,
    secondaries use the repositories (their ``@write`` methods are proxied to the primary).
    Returns: a ``pando_core.db.Component`` or a list of them.
    """


@hookspec
@kind(EVENT, sync_only=True)
def pando_register_commands(cli: Any) -> None:
    """Add subcommands to the ``pando`` command line.

    When: while the CLI is built, before argv is parsed (so only selected plugins add commands).
    Role: not yet known. ``cli`` is the root ``typer.Typer``; call ``cli.add_typer(sub, name=...)``
    or ``cli.command()(fn)``. Returns nothing.
    """


@hookspec
@kind(COLLECT)
def pando_register_tools(app: PluginApp) -> Any:
    """Contribute agent tools.

    When: every user turn, while the agent builds its tool list (keep it cheap: build the tools
    once and return the same objects). Role: any.
    Returns: a list of objects implementing ``pando_core.agent.tools.base.Tool``. A tool that never
    changes anything sets ``read_only = True``; the core asks permission before any other tool
    runs (see ``Tool.permission``).
    """


@hookspec
@kind(COLLECT, sync_only=True)
def pando_register_providers() -> Any:
    """Contribute LLM provider kinds.

    When: when the provider registry is first used. Role: any.
    Returns: a dict ``{kind: factory}`` where ``factory(**options)`` returns a
    ``pando_core.agent.providers.base.Provider``.
    """


@hookspec
@kind(COLLECT)
def pando_system_prompt_sections(app: PluginApp, session_id: str, prompt: str) -> Any:
    """Contribute named sections to the system prompt.

    When: every user turn, while the system prompt is built. Role: any.
    Returns: a list of ``pando_core.agent.prompt.PromptSection`` (or ``(name, text)`` tuples).
    """


@hookspec
@kind(COLLECT)
def pando_mcp_server_tools(app: PluginApp) -> Any:
    """Contribute tools exposed by ``pando mcp-server``.

    When: when an MCP server is started by the core or a plugin. Role: any.
    Returns: a list of ``Tool`` objects.
    """


@hookspec
@kind(COLLECT)
def pando_slash_commands(app: PluginApp) -> Any:
    """Contribute slash commands to the interactive session.

    When: when the interactive session starts. Role: any.
    Returns: a dict ``{"/name": callable(app, args: str) -> str | None}``; the text returned is shown.
    """


@hookspec
@kind(COLLECT)
def pando_app_subsystems(app: PluginApp) -> Any:
    """Attach subsystem objects to the App (for example ``app.skills``).

    When: once, while the App is built, after the core services exist. Role: any.
    Returns: a dict ``{attribute_name: object}``.
    """


@hookspec
@kind(COLLECT, sync_only=True)
def pando_web_routes(app: PluginApp) -> Any:
    """Add HTTP routes and pages to the web UI of ``pando serve``.

    When: once, when ``pando serve`` builds its web application (only in that process, and only
    with the ``web`` extra installed). Role: any: the server is a primary or a secondary, so reach
    primary-only services with ``app.call_primary``.
    Returns: a ``pando_core.web.WebRoutes`` or a list of them: ``routes`` are Starlette routes
    served from the root (name their paths ``/<plugin>/...`` for pages and ``/api/<plugin>/...``
    for JSON), ``nav`` is ``{title: path}`` for the links in every page's header. Plugin routes get
    the core's token and CSRF checks; ``pando_core.web.kit`` renders a page in the common layout.
    """


# --------------------------------------------------------------------------------------------
# Bus and role lifecycle
# --------------------------------------------------------------------------------------------


@hookspec
@kind(COLLECT)
def pando_bus_methods(app: PluginApp) -> Any:
    """Declare this plugin's bus methods, served by the primary.

    When: on the primary, each time its bus is set up: at start-up and again after a promotion.
    Returns: a dict ``{"plugin.method": handler}``; ``handler(params: dict)`` runs on a worker
    thread of the primary and returns a JSON value, or raises a ``pando_core.errors`` error (the
    caller gets the same class). Any instance calls it with ``app.call_primary(method, params)``.
    """


@hookspec
@kind(COLLECT)
def pando_services(app: PluginApp) -> Any:
    """Declare background services that run only on the primary.

    When: once per App, the first time it is the primary (at start, or when promoted). The core
    starts the services then and after every later promotion, and stops them on shutdown or
    fencing; secondaries never run them. In team mode (PostgreSQL) they run instead on the one
    local primary of the team holding the team lease. ``app.runs_services`` says whether they run
    in this instance.
    Returns: a ``pando_core.background.BackgroundService`` (a ``ThreadedService`` most often) or a
    list of them.
    """


@hookspec
@kind(EVENT)
def pando_bus_setup(bus: Any, app: PluginApp) -> None:
    """Register RPC methods and start primary-only singletons on a new bus.

    When: on the primary, right after its bus is bound, at start-up *and again after a promotion*
    (a secondary that took over). Low-level: most plugins want ``pando_bus_methods`` and
    ``pando_services`` instead. ``bus.register(name, handler)`` serves ``handler(params, call)``.
    Returns nothing.
    """


@hookspec
@kind(EVENT)
def pando_started(app: PluginApp, role: str) -> None:
    """The instance finished bootstrap and the App is built.

    When: once per process, after ``pando_bus_setup`` on a primary. ``role`` is "primary" or
    "secondary". Returns nothing.
    """


@hookspec
@kind(EVENT)
def pando_promoted(app: PluginApp, epoch: int) -> None:
    """This secondary became primary (after ``pando_bus_setup`` ran on its new bus).

    When: on the promoted instance only. Returns nothing.
    """


@hookspec
@kind(EVENT)
def pando_shutdown(app: PluginApp) -> None:
    """The instance is shutting down; stop background work.

    When: once, at the start of ``App.shutdown()``, before the bus and database close. Role: any.
    Returns nothing.
    """


# --------------------------------------------------------------------------------------------
# Pipelines
# --------------------------------------------------------------------------------------------


@hookspec
@kind(PIPELINE, value="prefix")
def pando_conversation_start(app: PluginApp, session_id: str, prompt: str) -> Any:
    """Inject context at the start of a conversation (the first turn of a session).

    When: before the first user message of a session is stored. Role: any.
    Returns: a string to prepend to the prompt, or None.
    """


@hookspec
@kind(PIPELINE, value="prompt")
def pando_rewrite_prompt(app: PluginApp, session_id: str, prompt: str) -> Any:
    """Rewrite the user's prompt (pipeline).

    When: every user turn, before the message is stored. Role: any.
    Returns: the new prompt text, or None to keep it.
    """


@hookspec
@kind(COLLECT)
def pando_enrich_context(app: PluginApp, session_id: str, prompt: str) -> Any:
    """Add retrieved context after the user's text (for example RAG results).

    When: every user turn, after the rewrite pipeline. Role: any.
    Returns: a string appended after the prompt (separated by a blank line), or None.
    """


@hookspec
@kind(PIPELINE, value="model")
def pando_select_provider(app: PluginApp, session_id: str, model: str) -> Any:
    """Choose the model for this turn (pipeline).

    When: every user turn, before the provider is resolved. Role: any.
    Returns: a ``provider/model`` reference to use instead, or None.
    """


@hookspec
@kind(PIPELINE, value="text")
def pando_filter_prompt_section(app: PluginApp, name: str, text: str, session_id: str) -> Any:
    """Change or drop one system-prompt section (pipeline).

    When: for every section, while the system prompt is built. Role: any.
    Returns: new text, ``""`` to drop the section, or None to keep it.
    """


@hookspec
@kind(PIPELINE, value="enabled")
def pando_check_capability(app: PluginApp, capability: str, enabled: bool) -> Any:
    """Turn a capability of the prompt on or off (pipeline).

    When: while the system prompt is built, once per capability (named after tool groups such as
    "bash", "edit", "fetch", "subagent"). A capability turned off also removes its tools.
    Returns: True/False, or None to keep the current value.
    """


@hookspec
@kind(PIPELINE, value="sections")
def pando_compose_prompt(app: PluginApp, sections: list) -> Any:
    """Reorder, add or remove system-prompt sections as a whole (pipeline).

    When: after the sections were filtered. ``sections`` is a list of ``PromptSection``.
    Returns: a new list, or None.
    """


@hookspec
@kind(PIPELINE, value="prompt")
def pando_filter_system_prompt(app: PluginApp, session_id: str, prompt: str) -> Any:
    """Rewrite the final system prompt text (pipeline).

    When: every request, after composition. Returns: the new text, or None.
    """


@hookspec
@kind(PIPELINE, value="arguments")
def pando_before_tool_call(app: PluginApp, session_id: str, tool_name: str, arguments: dict) -> Any:
    """Inspect, rewrite or refuse a tool call before it runs (pipeline).

    When: before every tool call (built-in, plugin and MCP tools); the tool asks for permission
    afterwards, for the arguments as rewritten.
    Returns: a new arguments dict, or None to keep them. Raise
    ``pando_core.agent.tools.base.ToolError`` to refuse the call; its message goes to the model.
    """


@hookspec
@kind(PIPELINE, value="result")
def pando_after_tool_call(app: PluginApp, session_id: str, tool_name: str, arguments: dict, result: Any) -> Any:
    """Inspect or rewrite a tool's result (pipeline).

    When: after every tool call. ``result`` is a ``ToolResult``.
    Returns: a new ``ToolResult`` (or a string for its content), or None to keep it.
    """


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


@hookspec
@kind(EVENT)
def pando_session_created(app: PluginApp, session: dict) -> None:
    """A top-level session was created.

    When: right after the row is stored (``session`` is the row as a dict). Role: any. Returns nothing.
    """


@hookspec
@kind(EVENT)
def pando_session_restored(app: PluginApp, session: dict) -> None:
    """An existing session was loaded to continue it.

    When: ``pando run --continue`` / ``--session``, ``pando goal --resume``, /sessions. Role: any.
    Returns nothing.
    """


@hookspec
@kind(EVENT)
def pando_session_ended(app: PluginApp, session: dict, origin: str) -> None:
    """A session ended.

    When: at the end of ``pando run`` / ``pando goal``, when the interactive session starts
    another session or is left, and after ``[agent] idle_minutes`` without activity. Role: the
    instance where it ended (``origin == app.instance_id``) and, for sessions that ended on any
    other instance, the instance running the services (``app.runs_services``: the primary, in team
    mode the holder of the team lease; ``origin`` is that instance's id). ``session`` is the row as a
    dict. Returns nothing.
    """


@hookspec
@kind(EVENT)
def pando_changes_committed(app: PluginApp, changes: list[CommittedChange], resync: bool) -> None:
    """Rows were committed to the database, by any instance.

    When: on the primary after every commit with changes, for the writes of every instance (its
    own and the proxied ones); on a secondary, when the primary's change events arrive. On a core
    thread, never on the write path. ``changes``: ``pando_core.changes.CommittedChange`` items
    (``table``, ``kind``, ``ids``, ``writer``). ``resync=True`` (``changes`` empty): changes may
    have been missed; re-read what you track. Returns nothing.
    """


@hookspec
@kind(EVENT)
def pando_message_created(app: PluginApp, message: dict) -> None:
    """A message was stored.

    When: after every user, assistant or tool message is created (``message`` has its parts).
    Role: any. Returns nothing.
    """


@hookspec
@kind(EVENT)
def pando_turn_finished(app: PluginApp, session_id: str, response: str, finish_reason: str, usage: dict) -> None:
    """The agent finished answering one user turn.

    When: at the end of every turn, also on error or cancellation. ``usage`` has tokens_in,
    tokens_out and cost of the turn. Role: any. Returns nothing.
    """


@hookspec
@kind(COLLECT)
def pando_turn_stopping(app: PluginApp, session_id: str, response: str, continuation: int) -> Any:
    """The coder agent is about to stop after a turn that ended well: ask it to go on.

    When: after ``pando_turn_finished`` of a coder turn whose status is success (not after an
    error, a cancel, a presented plan, nor in a sub-agent). ``continuation`` is 0 after the turn the
    caller asked for, n after the n-th follow-up turn this hook asked for. Role: any.
    Returns: a string, or None to let the agent stop. With a string the agent runs another turn
    whose user message is that string (the non-empty strings of every plugin, joined by blank
    lines), at most ``[agent] max_stop_continuations`` (3) in a row.
    """
