"""The gateway's tables on a real SQLite file (or PostgreSQL with PANDO_TEST_DATABASE=postgres):
catalog replace/search/get, usage, favorites."""

from __future__ import annotations

import pytest
from pando_mcp.catalog import DAY_MS, component

from pando_core.db import core_component, migrate, open_local_store
from pando_core.errors import NotFoundError

NOW = 1_800_000_000_000


@pytest.fixture
def store(pando_database):
    migrate(pando_database, [core_component(), component()])
    return open_local_store(pando_database, [core_component(), component()], "inst-1")


def tool(name, description="", read_only=False):
    return {"name": name, "description": description, "input_schema": {"type": "object", "properties": {}}, "read_only": read_only}


def test_replace_server_upserts_and_removes_stale_tools(store):
    catalog = store.mcp_catalog
    catalog.replace_server(server="gh", tools=[tool("issues", "List issues"), tool("prs")], discovered_at=1)
    assert catalog.replace_server(server="gh", tools=[tool("issues", "Search issues", True)], discovered_at=2) == {
        "tools": 1, "removed": 1}
    [row] = catalog.tools(server="gh")
    assert (row["id"], row["description"], row["read_only"], row["discovered_at"]) == ("gh/issues", "Search issues", True, 2)
    assert catalog.delete_server(server="gh") == 1 and catalog.tools() == []


def test_search_matches_every_word_case_insensitively_and_escapes_like(store):
    catalog = store.mcp_catalog
    catalog.replace_server(server="gh", tools=[tool("list_issues", "List GitHub issues"), tool("get_pr", "A pull request")], discovered_at=1)
    catalog.replace_server(server="time", tools=[tool("get_current_time", "Current time in a zone")], discovered_at=1)
    assert [r["id"] for r in catalog.search(query="GITHUB issues")] == ["gh/list_issues"]
    assert [r["id"] for r in catalog.search(query="get")] == ["gh/get_pr", "time/get_current_time"]
    assert [r["id"] for r in catalog.search(query="get", limit=1)] == ["gh/get_pr"]
    assert catalog.search(query="100%") == [] and len(catalog.search(query="")) == 3
    assert [r["id"] for r in catalog.search(query="t_c")] == ["time/get_current_time"]  # _ is literal


def test_get_by_id_by_server_and_by_bare_name(store):
    catalog = store.mcp_catalog
    catalog.replace_server(server="a", tools=[tool("x")], discovered_at=1)
    catalog.replace_server(server="b", tools=[tool("x")], discovered_at=1)
    assert catalog.get(tool="b/x")["server"] == "b"
    assert catalog.get(tool="x", server="b")["id"] == "b/x"
    assert catalog.get(tool="x")["id"] == "a/x"
    with pytest.raises(NotFoundError, match='no MCP tool "c/x"'):
        catalog.get(tool="x", server="c")


def test_usage_rows_keep_the_session_and_vanish_with_their_tool(store):
    catalog = store.mcp_catalog
    catalog.replace_server(server="a", tools=[tool("x")], discovered_at=1)
    catalog.record_usage(tool_id="a/x", called_at=NOW, duration_ms=1.5, success=True, session_id="s1", instance_id="i")
    assert catalog.usage() == [{"tool_id": "a/x", "session_id": "s1", "instance_id": "i", "called_at": NOW,
                                "duration_ms": 1.5, "success": True}]
    with pytest.raises(NotFoundError):
        catalog.record_usage(tool_id="a/missing", called_at=NOW, duration_ms=1, success=True)
    catalog.delete_server(server="a")
    assert catalog.usage() == []


def _calls(catalog, tool_id, count, at):
    for i in range(count):
        catalog.record_usage(tool_id=tool_id, called_at=at - i, duration_ms=1, success=True)


def test_favorites_threshold_max_window_and_decay(store):
    catalog = store.mcp_catalog
    catalog.replace_server(server="s", tools=[tool(n) for n in "abcdef"], discovered_at=1)
    _calls(catalog, "s/a", 7, NOW)  # most used
    _calls(catalog, "s/b", 5, NOW - DAY_MS)  # exactly the threshold
    _calls(catalog, "s/c", 4, NOW)  # below it
    _calls(catalog, "s/d", 6, NOW - 20 * DAY_MS)  # in the window, but last called 20 days ago: decayed
    _calls(catalog, "s/e", 9, NOW - 40 * DAY_MS)  # outside the window
    _calls(catalog, "s/f", 6, NOW - 2 * DAY_MS)
    favorites = catalog.favorites(now=NOW, threshold=5, limit=15, window_days=30, decay_days=14)
    assert [(f["id"], f["calls"]) for f in favorites] == [("s/a", 7), ("s/f", 6), ("s/b", 5)]
    assert [f["id"] for f in catalog.favorites(now=NOW, threshold=5, limit=2)] == ["s/a", "s/f"]
    assert catalog.favorites(now=NOW, threshold=50) == []


def test_favorites_of_an_empty_catalog(store):
    assert store.mcp_catalog.favorites(now=NOW) == []
