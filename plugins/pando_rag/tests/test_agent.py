"""The plugin in real agent turns against the scripted model server: tools, permissions, the
enricher, the MCP tool list."""

import asyncio
import json

from pando_core.testing.model_server import Reply

READ_ONLY = {
    "kb_search_documents", "kb_get_document", "search_events", "hybrid_search_remembrances", "code_index_status",
    "code_hybrid_search", "code_find_symbol", "code_get_symbols_overview", "code_get_project_stats", "code_list_projects",
    "code_search_pattern",
}


def _tool_results(request):
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def test_tools_search_and_add_through_the_service(model_server, make_app, pando_workdir):
    app = make_app(plugins=["rag"], model_server=model_server, config="\n[rag]\nkb_watch = false\n")
    tools = {tool.name: tool for tool in app.coder_agent.tools() if tool.name.startswith(("kb_", "code_")) or tool.name in READ_ONLY | {"save_event"}}
    assert len(tools) == 18
    assert {name for name, tool in tools.items() if tool.read_only} == READ_ONLY
    app.call_primary("rag.kb_add_document", {"file_path": "deploy.md", "content": "Deploys go out on Tuesdays after the freeze."}, timeout=120)
    model_server.script(
        Reply.tool("kb_search_documents", {"query": "when do deploys happen"}),
        Reply.text("Tuesdays."),
    )
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "when do we deploy?"))
    assert result.response == "Tuesdays."
    [found] = _tool_results(model_server.requests[1])
    assert json.loads(found)[0]["file_path"] == "deploy.md"


def test_a_bad_tool_call_is_an_error_result(model_server, make_app):
    app = make_app(plugins=["rag"], model_server=model_server, config="\n[rag]\nkb_watch = false\n")
    model_server.script(Reply.tool("kb_get_document", {"file_path": "../../etc/passwd"}), Reply.text("no"))
    session = app.sessions.create(title="t")
    asyncio.run(app.coder_agent.run(session["id"], "read it"))
    [error] = _tool_results(model_server.requests[1])
    assert error.startswith("kb_get_document:") and "leaves the knowledge-base folder" in error


def test_the_enricher_appends_only_similar_remembrances(model_server, make_app, pando_workdir):
    app = make_app(plugins=["rag"], model_server=model_server, config="\n[rag]\nenrich = true\nkb_watch = false\n")
    app.call_primary("rag.kb_add_document", {"file_path": "pool.md", "content": "Database connection pooling: reuse open database connections."}, timeout=120)
    model_server.script(Reply.text("ok"), Reply.text("ok"))
    session = app.sessions.create(title="t")
    asyncio.run(app.coder_agent.run(session["id"], "how do I reuse database connections with a pool?"))
    asyncio.run(app.coder_agent.run(session["id"], "quantum chromodynamics of gluons"))
    first = model_server.requests[0]["messages"][-1]["content"]
    second = model_server.requests[1]["messages"][-1]["content"]
    text = lambda c: c if isinstance(c, str) else json.dumps(c)  # noqa: E731
    assert '<context source="remembrances">' in text(first) and "pool.md" in text(first)
    assert "remembrances" not in text(second)


def test_mcp_server_gets_the_same_tools(make_app):
    app = make_app(plugins=["rag"])
    names = [tool.name for tools in app.plugins.hooks.pando_mcp_server_tools(app=app) for tool in tools]
    assert len(names) == 18 and "code_search_pattern" in names and "hybrid_search_remembrances" in names
