"""The ``rag.*`` bus methods: every operation of the plugin, served on the primary by its service.

Tools and CLI commands on any instance call them with ``app.call_primary("rag.<name>", params)``;
a tool's method is ``rag.<tool name>`` with the tool's own JSON arguments.  Handlers check their
parameters and raise the core's error kinds (ValidationError, NotFoundError, UnavailableError),
which reach the caller as the same classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pando_core.errors import ValidationError

from .search import rrf

JOB_WAIT_SECONDS = 600.0


def _flag(params: dict, name: str, default: bool) -> bool:
    value = params.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be true or false")
    return value


def _str_list(params: dict, name: str) -> list[str] | None:
    value = params.get(name)
    if value in (None, []):
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{name} must be a list of strings")
    return value


def _required(params: dict, name: str) -> Any:
    if name not in params or params[name] in (None, ""):
        raise ValidationError(f"{name} is required")
    return params[name]


def unified_search(engine, params: dict) -> list[dict]:  # noqa: ANN001
    """KB, session events and code of the named projects, each searched, then fused by RRF."""
    from .engine import checked_limit, checked_query

    query = checked_query(_required(params, "query"))
    limit = checked_limit(params.get("limit"), 10, 50)
    projects = _str_list(params, "project_ids") or []
    lists: list[list[dict]] = []
    if _flag(params, "include_kb", True):
        lists.append(engine.kb.search(query, limit))
    if _flag(params, "include_sessions", True):
        subject = params.get("subject", "session")
        lists.append(engine.events.search(query, subject=subject or None, limit=limit))
    if _flag(params, "include_code", bool(projects)):
        if not projects:
            projects = [p["project_id"] for p in engine.code.list_projects()]
        for project in projects:
            lists.append(engine.code.hybrid_search(project, query, limit))
    keyed = {}
    legs = []
    for results in lists:
        leg = []
        for item in results:
            key = f"{item['source']}:{item.get('id') or item.get('file_path')}#{item.get('chunk_index', '')}"
            keyed[key] = item
            leg.append(key)
        legs.append(leg)
    out = []
    for rank, (key, score) in enumerate(rrf(legs)[:limit], start=1):
        item = dict(keyed[key])
        item.update(score=round(score, 6), rank=rank)
        out.append(item)
    return out


def methods(service_of: Callable[[], Any]) -> dict[str, Callable[[dict], Any]]:
    """``{"rag.<name>": handler(params)}``; ``service_of()`` gives the running RagService."""

    def engine():  # noqa: ANN202
        service = service_of()
        if service is None:
            from pando_core.errors import UnavailableError

            raise UnavailableError("the rag service is not running on the primary")
        return service.ready_engine()

    def status(params: dict) -> dict:
        service = service_of()
        e = engine()
        return {
            "store": e.vectors.location,
            "team_mode": bool(e.config.chroma_url),
            "embedder": e.embedder.describe(),
            "needs_reindex": e.needs_reindex(),
            "collections": e.counts(),
            "kb": {"path": str(e.config.kb_path), "documents": e.kb.count(), "watching": service.watching, "watch_error": service.watch_error, "last_sync": service.last_sync},
            "events": {"total": e.events.count(), "sessions": e.events.count("session")},
            "code": {"projects": len(e.code.list_projects())},
        }

    def kb_import(params: dict) -> dict:
        e = engine()
        path = params.get("path") or None
        delete_missing = _flag(params, "delete_missing", False)
        job = e.jobs.start("kb_import", lambda job: e.kb.sync_directory(path, delete_missing=delete_missing, progress=job.progress, stop=e.jobs.closing.is_set), path=path or str(e.config.kb_path))
        if _flag(params, "background", False):
            return job
        done = e.jobs.wait(job["job_id"], JOB_WAIT_SECONDS)
        return _job_result(done)

    def reindex(params: dict) -> dict:
        e = engine()
        job = e.jobs.start("reindex", lambda job: e.reindex(progress=lambda kind, done, total: job.progress(done, total, kind)))
        return job if _flag(params, "background", False) else _job_result(e.jobs.wait(job["job_id"], JOB_WAIT_SECONDS))

    def search(params: dict) -> list[dict]:
        return unified_search(engine(), params)

    def enrich(params: dict) -> str | None:
        from .enricher import build_context

        return build_context(engine(), params.get("prompt") or "")

    def session_index(params: dict) -> dict | None:
        service = service_of()
        engine()
        return service.index_session(_required(params, "session_id"))

    e_ = engine
    table: dict[str, Callable[[dict], Any]] = {
        "rag.status": status,
        "rag.search": search,
        "rag.enrich": enrich,
        "rag.reindex": reindex,
        "rag.job_status": lambda p: e_().jobs.get(_required(p, "job_id")),
        "rag.session_index": session_index,
        # the agent tools' methods: rag.<tool name>, the tool's arguments
        "rag.kb_add_document": lambda p: e_().kb.add(_required(p, "file_path"), _required(p, "content"), p.get("metadata"), mirror=True),
        "rag.kb_import_path": kb_import,
        "rag.kb_search_documents": lambda p: e_().kb.search(_required(p, "query"), p.get("limit")),
        "rag.kb_get_document": lambda p: e_().kb.get(_required(p, "file_path")),
        "rag.kb_delete_document": lambda p: e_().kb.delete(_required(p, "file_path"), mirror=True),
        "rag.kb_list": lambda p: e_().kb.list(p.get("limit"), p.get("offset") or 0),
        "rag.save_event": lambda p: e_().events.save(_required(p, "subject"), _required(p, "content"), p.get("metadata")),
        "rag.search_events": lambda p: e_().events.search(
            p.get("query"), p.get("subject"), p.get("last_hours"), p.get("last_days"), p.get("from_date"), p.get("to_date"), p.get("limit")
        ),
        "rag.events_list": lambda p: e_().events.list(p.get("subject"), p.get("limit"), p.get("offset") or 0),
        "rag.events_delete": lambda p: e_().events.delete(_required(p, "id")),
        "rag.hybrid_search_remembrances": search,
        "rag.code_index_project": lambda p: e_().code.index_project(_required(p, "project_path"), p.get("project_name"), _str_list(p, "languages")),
        "rag.code_index_status": lambda p: e_().code.status(_required(p, "job_id")),
        "rag.code_hybrid_search": lambda p: e_().code.hybrid_search(
            _required(p, "project_id"), _required(p, "query"), p.get("limit"), _str_list(p, "languages"), _str_list(p, "symbol_types")
        ),
        "rag.code_find_symbol": lambda p: e_().code.find_symbol(
            _required(p, "project_id"),
            _required(p, "name_path_pattern"),
            p.get("relative_path"),
            _str_list(p, "symbol_types"),
            _str_list(p, "languages"),
            _flag(p, "include_body", False),
            int(p.get("depth") or 0),
            _flag(p, "substring_matching", False),
            p.get("limit"),
        ),
        "rag.code_get_symbols_overview": lambda p: e_().code.symbols_overview(_required(p, "project_id"), _required(p, "relative_path"), p.get("max_results")),
        "rag.code_get_project_stats": lambda p: e_().code.project_stats(_required(p, "project_id")),
        "rag.code_delete_project": lambda p: e_().code.delete_project(_required(p, "project_id")),
        "rag.code_reindex_file": lambda p: e_().code.reindex_file(_required(p, "project_id"), _required(p, "file_path")),
        "rag.code_list_projects": lambda p: e_().code.list_projects(),
        "rag.code_search_pattern": lambda p: e_().code.search_pattern(
            _required(p, "project_id"),
            _required(p, "pattern"),
            _flag(p, "case_sensitive", False),
            _flag(p, "is_regex", False),
            _str_list(p, "languages"),
            _str_list(p, "symbol_types"),
            p.get("limit"),
        ),
    }
    return table


def _job_result(job: dict) -> dict:
    from pando_core.errors import error_from_kind

    if job["status"] == "failed":
        raise error_from_kind(job.get("error_kind", "error"), job.get("error", "the job failed"))
    result = job.get("result")
    return result if isinstance(result, dict) else job
