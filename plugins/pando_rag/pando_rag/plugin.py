"""The pluggy wiring of pando-rag: hooks only.  Light imports: chromadb, wordllama and tree-sitter
are imported by the primary's service when it opens the store, never by `pando --version` or
`pando plugins`."""

from __future__ import annotations

import logging

from pando_core import hookimpl

from .config import SECTION

log = logging.getLogger("pando.rag")
_SKIPPED: set[str] = set()  # the reasons enrichment was skipped for, already logged


def _service(app):  # noqa: ANN001, ANN202
    services = getattr(app, "services", None)
    return services.get("rag") if services is not None else None


def _serving(app):  # noqa: ANN001, ANN202
    """The service for a bus method; in team mode, on a machine whose primary does not hold the
    team lease, an UnavailableError naming where the service runs."""
    service = _service(app)
    if service is None and getattr(app, "team", False) and not app.runs_services:
        raise app.services_unavailable("the rag service")
    return service


@hookimpl
def pando_config_sections():
    return SECTION


@hookimpl
def pando_web_routes(app):
    from .web import web_routes

    return web_routes(app)


@hookimpl
def pando_register_commands(cli):
    from .cli import build_cli

    cli.add_typer(build_cli(), name="rag")


@hookimpl
def pando_services(app):
    from .config import RagConfig
    from .service import RagService

    return [RagService(RagConfig.from_app(app))]


@hookimpl
def pando_bus_methods(app):
    from .api import methods

    return methods(lambda: _serving(app))


@hookimpl
def pando_register_tools(app):
    from .tools import all_tools

    return all_tools(app)


@hookimpl
def pando_mcp_server_tools(app):
    from .tools import all_tools

    return all_tools(app)


@hookimpl
def pando_changes_committed(app, changes, resync):
    """Where the services run (the primary; in team mode the lease holder): every message or
    session change, from any instance, marks its session for re-indexing (debounced by the service)."""
    if not app.runs_services:
        return
    service = _service(app)
    if service is None or service.debouncer is None:
        return
    for change in changes:
        if change.table == "messages" and change.kind in ("insert", "update"):
            for message_id in change.ids:
                session_id = service.session_of_message(app, message_id)
                if session_id is not None:
                    service.session_changed(session_id)
        elif change.table == "sessions":
            for session_id in change.ids:
                service.session_changed(session_id)


@hookimpl
def pando_session_ended(app, session, origin):
    """A session that ends is indexed at once (where the services run, whichever instance ended it)."""
    if app.runs_services and (service := _service(app)) is not None:
        service.session_changed(session["id"], now=True)


@hookimpl
def pando_enrich_context(app, session_id, prompt):
    from .config import RagConfig

    if not RagConfig.from_app(app).enrich:
        return None
    from pando_core.errors import PandoError, one_line

    try:
        return app.call_primary("rag.enrich", {"prompt": prompt[:10_000]}, timeout=30)
    except PandoError as exc:  # the turn goes on without remembrances
        reason = one_line(exc)
        # said once per reason: in team mode, away from the lease holder, every turn gets it
        (log.debug if reason in _SKIPPED else log.warning)("rag: enrichment skipped: %s", reason)
        _SKIPPED.add(reason)
        return None


@hookimpl
def pando_system_prompt_sections(app, session_id, prompt):
    from pando_core.agent.prompt import PromptSection

    return [
        PromptSection(
            "capabilities/remembrances",
            "You have a long-term memory: kb_search_documents, kb_get_document, kb_add_document, kb_delete_document and "
            "kb_import_path for the markdown knowledge base; save_event and search_events for remembered events and past "
            "sessions; hybrid_search_remembrances searches all of them at once. Search before asking the user for "
            "something they may have told you before.",
            order=60,
        ),
        PromptSection(
            "capabilities/code_indexing",
            "Indexed code: code_index_project (then code_index_status), code_list_projects, code_get_project_stats, "
            "code_hybrid_search, code_find_symbol (name paths like Class/method), code_get_symbols_overview, "
            "code_search_pattern, code_reindex_file and code_delete_project.",
            order=61,
        ),
    ]
