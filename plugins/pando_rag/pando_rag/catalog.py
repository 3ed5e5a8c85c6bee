"""The catalog: every remembrance's text and metadata, with SQLite FTS5 (bm25) for the keyword leg.

It is its own SQLite file, ``.pando/rag/catalog.db``, owned like the chroma store by the primary's
rag service — not a component in the core database — because the two must change together: a KB
import writes thousands of chunks, and in the core database each would be a proxied write and a
change event sent to every instance, for rows no other part of pando reads.  One owner also means
one lock around "catalog row + vector" pairs, and deleting ``.pando/rag/`` resets both at once.

Each kind has a plain table (``kb_chunks``, ``events``, ``code_symbols``) and an external-content
FTS5 table kept in sync by triggers.  Keyword queries are built from the query's words, each
quoted (no FTS syntax reaches SQLite from a user), OR-ed, ranked by ``bm25()``.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS kb_documents (
    path TEXT PRIMARY KEY,
    content TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    source_path TEXT,
    source_mtime INTEGER,
    chunks INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kb_chunks (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL REFERENCES kb_documents(path) ON DELETE CASCADE,
    chunk_index INTEGER NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS kb_chunks_path ON kb_chunks(path);
CREATE VIRTUAL TABLE IF NOT EXISTS kb_fts USING fts5(
    content, content='kb_chunks', content_rowid='rowid', tokenize='porter unicode61'
);

CREATE TABLE IF NOT EXISTS events (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    content TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    session_id TEXT,
    event_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_subject_at ON events(subject, event_at);
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(
    subject, content, content='events', content_rowid='rowid', tokenize='porter unicode61'
);

CREATE TABLE IF NOT EXISTS code_projects (
    project_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    root_path TEXT NOT NULL,
    language_stats TEXT NOT NULL DEFAULT '{}',
    last_indexed_at INTEGER,
    status TEXT NOT NULL DEFAULT 'pending'
);
CREATE TABLE IF NOT EXISTS code_files (
    project_id TEXT NOT NULL REFERENCES code_projects(project_id) ON DELETE CASCADE,
    file_path TEXT NOT NULL,
    language TEXT NOT NULL,
    file_hash TEXT NOT NULL,
    symbols_count INTEGER NOT NULL,
    indexed_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, file_path)
);
CREATE TABLE IF NOT EXISTS code_symbols (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL REFERENCES code_projects(project_id) ON DELETE CASCADE,
    file_path TEXT NOT NULL,
    language TEXT NOT NULL,
    symbol_type TEXT NOT NULL,
    name TEXT NOT NULL,
    name_path TEXT NOT NULL,
    parent_id TEXT,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    signature TEXT NOT NULL DEFAULT '',
    doc_string TEXT NOT NULL DEFAULT '',
    source_code TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS code_symbols_file ON code_symbols(project_id, file_path);
CREATE VIRTUAL TABLE IF NOT EXISTS code_fts USING fts5(
    name, name_path, doc_string, source_code,
    content='code_symbols', content_rowid='rowid', tokenize='unicode61'
);
"""

# keep each FTS table in step with its content table
_TRIGGERS = {
    "kb_chunks": ("kb_fts", ["content"]),
    "events": ("events_fts", ["subject", "content"]),
    "code_symbols": ("code_fts", ["name", "name_path", "doc_string", "source_code"]),
}


def _trigger_sql() -> str:
    out = []
    for table, (fts, cols) in _TRIGGERS.items():
        names = ", ".join(cols)
        new = ", ".join(f"new.{c}" for c in cols)
        old = ", ".join(f"old.{c}" for c in cols)
        out.append(
            f"CREATE TRIGGER IF NOT EXISTS {table}_ai AFTER INSERT ON {table} BEGIN "
            f"INSERT INTO {fts}(rowid, {names}) VALUES (new.rowid, {new}); END;"
            f"CREATE TRIGGER IF NOT EXISTS {table}_ad AFTER DELETE ON {table} BEGIN "
            f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.rowid, {old}); END;"
            f"CREATE TRIGGER IF NOT EXISTS {table}_au AFTER UPDATE ON {table} BEGIN "
            f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.rowid, {old}); "
            f"INSERT INTO {fts}(rowid, {names}) VALUES (new.rowid, {new}); END;"
        )
    return "\n".join(out)


_WORD = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_TERMS = 32


def match_expression(query: str) -> str | None:
    """An FTS5 MATCH expression for a user's text: its first words, each quoted, OR-ed; None when
    the text has no word at all."""
    words: list[str] = []
    for word in _WORD.findall(query):
        if word.lower() not in words:
            words.append(word.lower())
        if len(words) >= MAX_QUERY_TERMS:
            break
    return " OR ".join(f'"{w}"' for w in words) if words else None


class Catalog:
    """One SQLite connection, used by the rag engine under its lock."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(_SCHEMA + _trigger_sql())
        self.conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.conn.close()

    # -- small helpers ------------------------------------------------------------------------

    def rows(self, sql: str, params: tuple | list = ()) -> list[dict[str, Any]]:
        return [dict(row) for row in self.conn.execute(sql, params)]

    def one(self, sql: str, params: tuple | list = ()) -> dict[str, Any] | None:
        row = self.conn.execute(sql, params).fetchone()
        return dict(row) if row is not None else None

    def scalar(self, sql: str, params: tuple | list = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row is not None else None

    def transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    def get_meta(self, key: str) -> str | None:
        return self.scalar("SELECT value FROM meta WHERE key = ?", (key,))

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # -- the keyword leg ------------------------------------------------------------------------

    def keyword(self, kind: str, query: str, limit: int, where: str = "", params: tuple = ()) -> list[tuple[str, float]]:
        """``(id, bm25 score)`` pairs of kind ``kb``, ``events`` or ``code``, best first (bm25 is
        negative in SQLite: lower is better; we return it negated so higher is better)."""
        expression = match_expression(query)
        if expression is None:
            return []
        table, fts = {"kb": ("kb_chunks", "kb_fts"), "events": ("events", "events_fts"), "code": ("code_symbols", "code_fts")}[kind]
        extra = f" AND {where}" if where else ""
        sql = (
            f"SELECT t.id, bm25({fts}) AS rank FROM {fts} JOIN {table} t ON t.rowid = {fts}.rowid "
            f"WHERE {fts} MATCH ?{extra} ORDER BY rank LIMIT ?"
        )
        return [(row[0], -float(row[1])) for row in self.conn.execute(sql, (expression, *params, limit))]


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
