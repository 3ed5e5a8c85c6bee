"""The pluggy wiring of pando-evaluator: config, tables, service, bus method, prompt hooks, tools, CLI.

Only light modules are imported here (every ``pando`` start imports this one); the store, the
judge and the service load when they are used.
"""

from __future__ import annotations

from typing import Any

from pando_core import hookimpl

from .config import SECTION, EvaluatorConfig


class EvaluatorSubsystem:
    """``app.evaluator``: the settings and what this process gave each session's prompt."""

    def __init__(self, config: EvaluatorConfig) -> None:
        from .prompts import PromptState

        self.config = config
        self.prompts = PromptState()


def _subsystem(app: Any) -> EvaluatorSubsystem | None:
    return getattr(app, "evaluator", None)


def _service(app: Any):
    services = getattr(app, "services", None)
    return services.get("evaluator") if services is not None else None


@hookimpl
def pando_config_sections():
    return SECTION


@hookimpl
def pando_db_components():
    from .store import COMPONENT

    return COMPONENT


@hookimpl
def pando_app_subsystems(app):
    config = EvaluatorConfig.of(app)
    return {"evaluator": EvaluatorSubsystem(config)} if config.enabled else None


@hookimpl
def pando_services(app):
    if _subsystem(app) is None:
        return None
    from .service import EvaluatorService

    return [EvaluatorService()]


@hookimpl
def pando_bus_methods(app):
    from .methods import bus_methods

    return bus_methods(app)


@hookimpl
def pando_changes_committed(app, changes, resync):
    service = _service(app)
    if service is None:  # a secondary, or disabled
        return
    if resync:
        service.catch_up(app)
        return
    for change in changes:
        if change.table == "evaluator_pending":
            for session_id in change.ids:
                service.enqueue(session_id)


@hookimpl
def pando_session_ended(app, session, origin):
    subsystem = _subsystem(app)
    if subsystem is None or session.get("parent_session_id") or not session.get("message_count"):
        return  # sub-agent sessions count as part of their parent; an empty session has nothing to score
    session_id = session["id"]
    if origin == app.instance_id:
        subsystem.prompts.forget(session_id)
        # durable first (proxied from a secondary): if the primary dies before the evaluation, the
        # next one finds it queued
        app.store.evaluator.mark_ended(session_id=session_id, origin=origin)
    service = _service(app)  # the primary's: it hears the sessions that ended on every instance
    if service is not None:
        service.enqueue(session_id)


@hookimpl
def pando_system_prompt_sections(app, session_id, prompt):
    subsystem = _subsystem(app)
    if subsystem is None:
        return None
    from pando_core.agent.prompt import PromptSection

    from .prompts import RULES_ORDER, RULES_SECTION, building_for

    building_for.set(session_id)
    text = subsystem.prompts.learned_rules(app, session_id, prompt, subsystem.config)
    return [PromptSection(RULES_SECTION, text, order=RULES_ORDER)] if text else None


@hookimpl
def pando_filter_prompt_section(app, name, text):
    subsystem = _subsystem(app)
    if subsystem is None:
        return None
    from .prompts import RULES_SECTION, building_for

    if name == RULES_SECTION:
        return None
    return subsystem.prompts.variant_text(app, building_for.get(), name, subsystem.config)


@hookimpl
def pando_mcp_server_tools(app):
    from .tools import mcp_tools

    return mcp_tools(app)


@hookimpl
def pando_web_routes(app):
    from .web import web_routes

    return web_routes(app)


@hookimpl
def pando_register_commands(cli):
    from .cli import app

    cli.add_typer(app, name="evaluator", help="Self-improvement: session scores, UCB1 prompt variants, learned rules.")
