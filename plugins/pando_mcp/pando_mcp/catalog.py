"""The gateway's tables: the catalog of every server's tools and a usage row per call.

A plugin component of the core database, so a secondary's writes (usage rows above all) are sent
to the primary by the core and applied there once. Times are milliseconds since the epoch, given
by the caller (a proxied write is replayed with the same values). Favorites are the tools called at
least ``threshold`` times within ``window_days``, last called within ``decay_days``, most called
first, at most ``limit`` of them.
"""

from __future__ import annotations

import json
from typing import Any

from pando_core.db import Component, Migration, Repository, read, write
from pando_core.errors import NotFoundError

DAY_MS = 86_400_000

MIGRATIONS = [
    Migration(
        1,
        "catalog and usage",
        [
            "CREATE TABLE mcp_tools ("
            " id TEXT PRIMARY KEY,"  # "<server>/<tool>"
            " server_name TEXT NOT NULL,"
            " tool_name TEXT NOT NULL,"
            " description TEXT NOT NULL DEFAULT '',"
            " input_schema TEXT NOT NULL DEFAULT '{}',"
            " read_only INTEGER NOT NULL DEFAULT 0,"
            " discovered_at INTEGER NOT NULL,"
            " UNIQUE (server_name, tool_name))",
            "CREATE TABLE mcp_tool_usage ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " tool_id TEXT NOT NULL REFERENCES mcp_tools(id) ON DELETE CASCADE,"
            " session_id TEXT NOT NULL DEFAULT '',"
            " instance_id TEXT NOT NULL DEFAULT '',"
            " called_at INTEGER NOT NULL,"
            " duration_ms REAL NOT NULL,"
            " success INTEGER NOT NULL)",
            "CREATE INDEX mcp_tool_usage_tool_time ON mcp_tool_usage (tool_id, called_at)",
        ],
    )
]

_COLUMNS = "id, server_name, tool_name, description, input_schema, read_only, discovered_at"


def _row(row: Any) -> dict[str, Any]:
    return {
        "id": row[0],
        "server": row[1],
        "tool": row[2],
        "description": row[3],
        "input_schema": json.loads(row[4] or "{}"),
        "read_only": bool(row[5]),
        "discovered_at": row[6],
    }


class CatalogRepository(Repository):
    name = "mcp_catalog"

    @write
    def replace_server(self, tx, *, server: str, tools: list[dict[str, Any]], discovered_at: int) -> dict[str, int]:
        """The tools ``server`` lists now: rows upserted, those it no longer lists removed."""
        raw = tx.raw
        ids = []
        for tool in tools:
            tool_id = f"{server}/{tool['name']}"
            ids.append(tool_id)
            raw.execute(
                "INSERT INTO mcp_tools (" + _COLUMNS + ") VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET description = excluded.description,"
                " input_schema = excluded.input_schema, read_only = excluded.read_only,"
                " discovered_at = excluded.discovered_at",
                (
                    tool_id,
                    server,
                    tool["name"],
                    tool.get("description") or "",
                    json.dumps(tool.get("input_schema") or {}),
                    int(bool(tool.get("read_only"))),
                    discovered_at,
                ),
            )
        marks = ",".join("?" * len(ids))
        stale = raw.execute(
            f"DELETE FROM mcp_tools WHERE server_name = ? AND id NOT IN ({marks})" if ids else
            "DELETE FROM mcp_tools WHERE server_name = ?",
            (server, *ids),
        ).rowcount
        tx.changed("mcp_tools", "update", server)
        return {"tools": len(ids), "removed": stale}

    @write
    def delete_server(self, tx, *, server: str) -> int:
        removed = tx.raw.execute("DELETE FROM mcp_tools WHERE server_name = ?", (server,)).rowcount
        tx.changed("mcp_tools", "delete", server)
        return removed

    @read
    def tools(self, tx, *, server: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT " + _COLUMNS + " FROM mcp_tools"
        rows = tx.raw.execute(
            sql + (" WHERE server_name = ? ORDER BY id" if server else " ORDER BY id"), (server,) if server else ()
        )
        return [_row(r) for r in rows]

    @read
    def search(self, tx, *, query: str, limit: int = 10) -> list[dict[str, Any]]:
        """Case-insensitive match of every word of ``query`` in the tool's name, server or description."""
        words = [w for w in query.lower().split() if w] or [""]
        clause = " AND ".join(
            "(lower(tool_name) LIKE ? ESCAPE '\\' OR lower(server_name) LIKE ? ESCAPE '\\'"
            " OR lower(description) LIKE ? ESCAPE '\\')"
            for _ in words
        )
        params: list[Any] = []
        for word in words:
            pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            params += [pattern, pattern, pattern]
        rows = tx.raw.execute(
            "SELECT " + _COLUMNS + f" FROM mcp_tools WHERE {clause} ORDER BY id LIMIT ?", (*params, max(1, limit))
        )
        return [_row(r) for r in rows]

    @read
    def get(self, tx, *, tool: str, server: str | None = None) -> dict[str, Any]:
        """By ``server/tool``, by server and tool name, or by bare tool name (first match)."""
        if server:
            row = tx.raw.execute(
                "SELECT " + _COLUMNS + " FROM mcp_tools WHERE server_name = ? AND tool_name = ?", (server, tool)
            ).fetchone()
        else:
            row = tx.raw.execute("SELECT " + _COLUMNS + " FROM mcp_tools WHERE id = ?", (tool,)).fetchone()
            if row is None:
                row = tx.raw.execute(
                    "SELECT " + _COLUMNS + " FROM mcp_tools WHERE tool_name = ? ORDER BY id LIMIT 1", (tool,)
                ).fetchone()
        if row is None:
            where = f'"{server}/{tool}"' if server else f'"{tool}"'
            raise NotFoundError(f"no MCP tool {where} in the catalog")
        return _row(row)

    @write
    def record_usage(
        self,
        tx,
        *,
        tool_id: str,
        called_at: int,
        duration_ms: float,
        success: bool,
        session_id: str = "",
        instance_id: str = "",
    ) -> int:
        row = tx.raw.execute(
            "INSERT INTO mcp_tool_usage (tool_id, session_id, instance_id, called_at, duration_ms, success)"
            " SELECT id, ?, ?, ?, ?, ? FROM mcp_tools WHERE id = ? RETURNING id",
            (session_id, instance_id, called_at, duration_ms, int(success), tool_id),
        ).fetchone()
        if row is None:
            raise NotFoundError(f'no MCP tool "{tool_id}" in the catalog')
        tx.changed("mcp_tool_usage", "insert", str(row[0]))
        return int(row[0])

    @read
    def usage(self, tx, *, tool_id: str | None = None) -> list[dict[str, Any]]:
        rows = tx.raw.execute(
            "SELECT tool_id, session_id, instance_id, called_at, duration_ms, success FROM mcp_tool_usage"
            + (" WHERE tool_id = ?" if tool_id else "")
            + " ORDER BY id",
            (tool_id,) if tool_id else (),
        )
        keys = ("tool_id", "session_id", "instance_id", "called_at", "duration_ms", "success")
        return [dict(zip(keys, r, strict=True)) | {"success": bool(r[5])} for r in rows]

    @read
    def favorites(
        self, tx, *, now: int, threshold: int = 5, limit: int = 15, window_days: float = 30, decay_days: float = 14
    ) -> list[dict[str, Any]]:
        rows = tx.raw.execute(
            "SELECT t.id, t.server_name, t.tool_name, t.description, t.input_schema, t.read_only, t.discovered_at,"
            " count(u.id) AS calls, max(u.called_at) AS last_called"
            " FROM mcp_tools t JOIN mcp_tool_usage u ON u.tool_id = t.id"
            " WHERE u.called_at >= ?"
            " GROUP BY t.id HAVING count(u.id) >= ? AND max(u.called_at) >= ?"  # no aliases: PostgreSQL
            " ORDER BY calls DESC, last_called DESC, t.id LIMIT ?",
            (now - int(window_days * DAY_MS), threshold, now - int(decay_days * DAY_MS), max(0, limit)),
        )
        return [_row(r) | {"calls": r[7], "last_called": r[8]} for r in rows]


def component() -> Component:
    return Component("mcp", list(MIGRATIONS), [CatalogRepository])
