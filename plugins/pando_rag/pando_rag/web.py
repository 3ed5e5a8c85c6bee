"""pando-rag's page in ``pando serve`` (``pando_web_routes``): what the store holds (documents,
events, code projects, collections, the embedder) and a search box.

The search is a plain GET form answered on the server (it works without JavaScript) through the
bus method ``rag.search`` on the primary, which owns the vector store; so does the status.
"""

from __future__ import annotations

from typing import Any

from pando_core.errors import PandoError, one_line

SEARCH_TIMEOUT_S = 120.0  # the first call may load the embedder


def web_routes(app: Any) -> Any:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from pando_core.web import WebRoutes
    from pando_core.web.kit import escape, page

    def call(method: str, params: dict[str, Any] | None = None) -> Any:
        return app.call_primary(method, params or {}, timeout=SEARCH_TIMEOUT_S)

    def search(query: str, limit: int = 10) -> list[dict[str, Any]]:
        return call("rag.search", {"query": query, "limit": limit})

    def status_html(status: dict[str, Any]) -> str:
        kb = status.get("kb") or {}
        events = status.get("events") or {}
        collections = "".join(
            f"<tr><td>{escape(str(name))}</td><td class=\"num\">{count}</td></tr>" for name, count in (status.get("collections") or {}).items()
        )
        note = '<p class="error">The store needs a reindex (the embedder changed): <code>pando rag reindex</code>.</p>' if status.get("needs_reindex") else ""
        return (
            f"{note}<table><tbody>"
            f'<tr><th>Knowledge-base documents</th><td class="num" id="kb-documents">{kb.get("documents", 0)}</td></tr>'
            f'<tr><th>Session events</th><td class="num">{events.get("sessions", 0)} of {events.get("total", 0)} events</td></tr>'
            f'<tr><th>Code projects</th><td class="num">{(status.get("code") or {}).get("projects", 0)}</td></tr>'
            f"<tr><th>Embedder</th><td>{escape(str(status.get('embedder', '')))}</td></tr>"
            f"<tr><th>Store</th><td><code>{escape(str(status.get('store', '')))}</code></td></tr>"
            f"</tbody></table><h3>Collections</h3><table><tbody>{collections}</tbody></table>"
        )

    def results_html(query: str, results: list[dict[str, Any]]) -> str:
        if not results:
            return f'<p class="empty">Nothing found for “{escape(query)}”.</p>'
        items = "".join(
            f'<li class="hit"><span class="meta">[{escape(r["source"])}] {escape(str(r.get("file_path") or r.get("id") or ""))}'
            f' · score {float(r.get("score", 0)):.4f}</span><div>{escape(one_line(r.get("content") or r.get("signature") or "", 300))}</div></li>'
            for r in results
        )
        return f'<ol class="results">{items}</ol>'

    async def rag_page(request: Any) -> Any:
        query = (request.query_params.get("q") or "").strip()
        try:
            status = await run_in_threadpool(call, "rag.status")
            found = await run_in_threadpool(search, query) if query else None
        except PandoError as exc:
            return page(request, "Knowledge", f'<p class="error">{escape(one_line(str(exc)))}</p>', status=503)
        form = (
            f'<form method="get" action="/rag" class="search"><input name="q" value="{escape(query)}" '
            'placeholder="Search the knowledge base and sessions" size="50" aria-label="query"> <button>Search</button></form>'
        )
        results = results_html(query, found) if found is not None else ""
        return page(request, "Knowledge", f"{form}<div id=\"results\">{results}</div><h2>Store</h2>{status_html(status)}")

    def status_json(request: Any) -> Any:
        """The RAG store: documents, events, code projects, collections, embedder."""
        try:
            return JSONResponse(call("rag.status"))
        except PandoError as exc:
            return JSONResponse({"error": one_line(str(exc))}, status_code=503)

    def search_json(request: Any) -> Any:
        """Hybrid search of the knowledge base and sessions (?q=&limit=)."""
        query = (request.query_params.get("q") or "").strip()
        if not query:
            return JSONResponse({"error": "q (the query) is required"}, status_code=400)
        try:
            return JSONResponse(search(query, int(request.query_params.get("limit", 10))))
        except (PandoError, ValueError) as exc:
            return JSONResponse({"error": one_line(str(exc))}, status_code=400)

    return WebRoutes(
        routes=[Route("/rag", rag_page), Route("/api/rag/status", status_json), Route("/api/rag/search", search_json)],
        nav={"Knowledge": "/rag"},
    )
