"""The core repositories: sessions, messages, file history, projects, permission grants, goals."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update

from ..errors import NotFoundError, ValidationError
from ..ids import new_id
from . import schema as t
from .engine import ReadTx, WriteTx
from .repository import Repository, read, write

MESSAGE_ROLES = ("user", "assistant", "tool", "system")


def _row(row: Any) -> dict[str, Any] | None:
    """A result row as a dict (rows from the raw helpers already are)."""
    if row is None or isinstance(row, dict):
        return row
    return dict(row._mapping)


# Statements are built once and executed with bound parameters. The ones every write runs (insert,
# get/update by id, next seq) are plain SQL text for the DBAPI connection, generated from the table
# definitions: SQLAlchemy's execution machinery costs several times the SQLite work of these
# one-row statements. The rest are SQLAlchemy constructs (building one costs more than running it).
_STATEMENTS: dict[tuple, Any] = {}


def _statement(key: tuple, build) -> Any:  # noqa: ANN001
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS[key] = build()
    return statement


def _one(cursor: Any) -> dict[str, Any] | None:
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row, strict=True))


def _insert(tx: WriteTx, table, values: dict[str, Any]) -> None:  # noqa: ANN001
    keys = tuple(values)
    sql = _statement(
        ("insert", table.name, keys),
        lambda: f"INSERT INTO {table.name} ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
    )
    tx.raw.execute(sql, tuple(values.values()))  # positional: binding by name costs a lookup per column


def _get_by_id(tx: ReadTx | WriteTx, table, row_id: str) -> dict[str, Any] | None:  # noqa: ANN001
    sql = _statement(("get", table.name), lambda: f"SELECT * FROM {table.name} WHERE id = ?")
    return _one(tx.raw.execute(sql, (row_id,)))


def _update_by_id(tx: WriteTx, table, row_id: str, values: dict[str, Any]) -> dict[str, Any] | None:  # noqa: ANN001
    """UPDATE ... RETURNING the row (None when there is no such row)."""
    keys = tuple(sorted(values))
    sql = _statement(
        ("update", table.name, keys),
        lambda: f"UPDATE {table.name} SET {', '.join(f'{k} = :v_{k}' for k in keys)} WHERE id = :row_id RETURNING *",
    )
    params = {"v_" + key: value for key, value in values.items()}
    params["row_id"] = row_id
    return _one(tx.raw.execute(sql, params))


SESSION_FIELDS = frozenset({"title", "summary_message_id", "prompt_tokens", "completion_tokens", "cost", "model"})
GOAL_FIELDS = frozenset(
    {
        "status",
        "iteration",
        "last_progress",
        "next_step",
        "blocked_reason",
        "response",
        "stall_count",
        "completed_at",
        "max_iterations",
        "max_duration_seconds",
    }
)


def _check_fields(method: str, fields: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(f"{method}: unknown fields {', '.join(sorted(unknown))}")


_ADD_USAGE = """UPDATE sessions SET prompt_tokens = :v_prompt, completion_tokens = :v_completion,
    total_prompt_tokens = total_prompt_tokens + :v_prompt, total_completion_tokens = total_completion_tokens + :v_completion,
    cost = cost + :v_cost, model = coalesce(:v_model, model), updated_at = :v_now WHERE id = :row_id RETURNING *"""
_BUMP_MESSAGE_COUNT = "UPDATE sessions SET message_count = message_count + ?, updated_at = ? WHERE id = ?"


def _bump_message_count(tx: WriteTx, session_id: str, delta: int, now: int) -> None:
    tx.raw.execute(_BUMP_MESSAGE_COUNT, (delta, now, session_id))


def _new_id(given: str | None) -> str:
    return given or new_id()


class SessionRepository(Repository):
    name = "sessions"

    @write
    def create(
        self, tx: WriteTx, *, title: str = "New session", parent_session_id: str | None = None, id: str | None = None
    ) -> dict:
        now = tx.now_ms()
        values = {
            "id": _new_id(id),
            "parent_session_id": parent_session_id,
            "title": title,
            "message_count": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_prompt_tokens": 0,
            "total_completion_tokens": 0,
            "cost": 0.0,
            "summary_message_id": None,
            "model": None,
            "created_at": now,
            "updated_at": now,
            "seq": tx.next_seq(t.sessions.name),
            "ended_at": None,
        }
        _insert(tx, t.sessions, values)
        tx.changed("sessions", "insert", values["id"])
        return values

    @read
    def get(self, tx: ReadTx, *, id: str) -> dict:
        row = _get_by_id(tx, t.sessions, id)
        if row is None:
            raise NotFoundError(f"session {id} not found")
        return row

    @read
    def find(self, tx: ReadTx, *, id_prefix: str) -> dict:
        """A session by id or unique id prefix."""
        rows = tx.conn.execute(
            select(t.sessions).where(t.sessions.c.id.like(id_prefix.replace("%", "") + "%")).limit(2)
        ).all()
        if not rows:
            raise NotFoundError(f"session {id_prefix} not found")
        if len(rows) > 1:
            raise ValidationError(f"session id prefix {id_prefix} is ambiguous")
        return _row(rows[0])

    @read
    def list(
        self, tx: ReadTx, *, include_children: bool = False, include_empty: bool = False, limit: int = 1000, offset: int = 0
    ) -> list:
        query = select(t.sessions)
        if not include_children:
            query = query.where(t.sessions.c.parent_session_id.is_(None))
        if not include_empty:
            query = query.where(t.sessions.c.message_count > 0)
        query = query.order_by(t.sessions.c.updated_at.desc(), t.sessions.c.seq.desc()).limit(limit).offset(max(0, offset))
        return [_row(r) for r in tx.conn.execute(query)]

    @read
    def idle(self, tx: ReadTx, *, before: int, limit: int = 100) -> list:
        """Top-level sessions with messages, active since they last ended (or never ended), and
        untouched since *before* (milliseconds): what the idle sweep ends."""
        rows = tx.raw.execute(
            "SELECT * FROM sessions WHERE parent_session_id IS NULL AND message_count > 0"
            " AND (ended_at IS NULL OR ended_at < updated_at) AND updated_at < ? ORDER BY updated_at LIMIT ?",
            (int(before), int(limit)),
        )
        columns = [d[0] for d in rows.description]
        return [dict(zip(columns, row, strict=True)) for row in rows.fetchall()]

    @write
    def end(self, tx: WriteTx, *, id: str) -> dict:
        """Record that the session ended: ``{"ended": True, "session": row}`` when this ends a
        stretch of activity (a change of kind ``ended`` is announced), ``{"ended": False, ...}``
        when it had already ended and nothing happened since."""
        row = _get_by_id(tx, t.sessions, id)
        if row is None:
            raise NotFoundError(f"session {id} not found")
        ended_at = row.get("ended_at")
        if ended_at is not None and ended_at >= row["updated_at"]:
            return {"ended": False, "session": row}
        row["ended_at"] = max(tx.now_ms(), row["updated_at"])
        tx.raw.execute("UPDATE sessions SET ended_at = ? WHERE id = ?", (row["ended_at"], id))
        tx.changed("sessions", "ended", id)
        return {"ended": True, "session": row}

    @read
    def latest(self, tx: ReadTx) -> dict | None:
        query = (
            select(t.sessions)
            .where(t.sessions.c.parent_session_id.is_(None), t.sessions.c.message_count > 0)
            .order_by(t.sessions.c.updated_at.desc(), t.sessions.c.seq.desc())
            .limit(1)
        )
        return _row(tx.conn.execute(query).first())

    @write
    def update(self, tx: WriteTx, *, id: str, **fields: Any) -> dict:
        _check_fields("sessions.update", fields, SESSION_FIELDS)
        row = _update_by_id(tx, t.sessions, id, dict(fields, updated_at=tx.now_ms()))
        if row is None:
            raise NotFoundError(f"session {id} not found")
        tx.changed("sessions", "update", id)
        return _row(row)

    @write
    def add_usage(
        self,
        tx: WriteTx,
        *,
        id: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
        model: str | None = None,
    ) -> dict:
        """Record one request's usage: last-request fill (overwritten) and cumulative totals."""
        params = {
            "row_id": id,
            "v_prompt": prompt_tokens,
            "v_completion": completion_tokens,
            "v_cost": cost,
            "v_model": model or None,
            "v_now": tx.now_ms(),
        }
        row = _one(tx.raw.execute(_ADD_USAGE, params))
        if row is None:
            raise NotFoundError(f"session {id} not found")
        tx.changed("sessions", "update", id)
        return row

    @write
    def add_cost(self, tx: WriteTx, *, id: str, cost: float) -> None:
        tx.conn.execute(update(t.sessions).where(t.sessions.c.id == id).values(cost=t.sessions.c.cost + cost))
        tx.changed("sessions", "update", id)

    @write
    def delete(self, tx: WriteTx, *, id: str) -> None:
        result = tx.conn.execute(delete(t.sessions).where(t.sessions.c.id == id))
        if result.rowcount == 0:
            raise NotFoundError(f"session {id} not found")
        tx.changed("sessions", "delete", id)


def _message_row(row: Any) -> dict | None:
    data = _row(row)
    if data is not None:
        data["parts"] = json.loads(data["parts"] or "[]")
    return data


def _finished_at(parts: list[dict]) -> int | None:
    for part in parts:
        if part.get("type") == "finish":
            return part.get("data", {}).get("time")
    return None


# PostgreSQL: the session's count bumped, the message inserted with its seq, in one statement
# (instead of nextval, the session read, INSERT and UPDATE: four statements, most of a team-mode
# write's time), which also carries the write's key and NOTIFY when it can (execute_finishing).
# Bumping first locks the session's row, so concurrent writers to one session also take their
# seq in commit order; no session, no row.
_PG_CREATE_MESSAGE = """WITH s AS (UPDATE sessions SET message_count = message_count + 1, updated_at = ?
    WHERE id = ? RETURNING id),
m AS (INSERT INTO messages (id, session_id, role, parts, model, created_at, updated_at, finished_at, seq)
    SELECT ?::text, s.id, ?::text, ?::text, ?::text, ?::bigint, ?::bigint, ?::bigint, nextval('pando_seq')
    FROM s RETURNING seq)"""
_PG_CREATE_MESSAGE_SELECT = "SELECT m.seq FROM m"


def _create_message_pg(
    tx: WriteTx, session_id: str, role: str, parts: list, model: str | None, message_id: str, now: int
) -> dict:
    finished_at = _finished_at(parts)
    tx.changed("messages", "insert", message_id)  # before the statement: it may announce them
    tx.changed("sessions", "update", session_id)
    params = [now, session_id, message_id, role, json.dumps(parts), model, now, now, finished_at]
    cursor = tx.execute_finishing(_PG_CREATE_MESSAGE, params, _PG_CREATE_MESSAGE_SELECT)
    if cursor is None:  # inside a savepoint (a batch): the key and NOTIFY go at COMMIT
        cursor = tx.raw.execute(_PG_CREATE_MESSAGE + " " + _PG_CREATE_MESSAGE_SELECT, params)
    row = cursor.fetchone()
    if row is None:
        raise NotFoundError(f"session {session_id} not found")
    return {
        "id": message_id,
        "session_id": session_id,
        "role": role,
        "parts": parts,
        "model": model,
        "created_at": now,
        "updated_at": now,
        "finished_at": finished_at,
        "seq": row[0],
    }


class MessageRepository(Repository):
    name = "messages"

    @write
    def create(
        self,
        tx: WriteTx,
        *,
        session_id: str,
        role: str,
        parts: list,
        model: str | None = None,
        id: str | None = None,
    ) -> dict:
        if role not in MESSAGE_ROLES:
            raise ValidationError(f"messages.create: role must be one of {', '.join(MESSAGE_ROLES)}")
        if not isinstance(parts, list):
            raise ValidationError("messages.create: parts must be a list")
        now = tx.now_ms()
        if tx.dialect == "postgresql":
            return _create_message_pg(tx, session_id, role, parts, model, _new_id(id), now)
        values = {
            "id": _new_id(id),
            "session_id": session_id,
            "role": role,
            "parts": json.dumps(parts),
            "model": model,
            "created_at": now,
            "updated_at": now,
            "finished_at": _finished_at(parts),
            "seq": tx.next_seq(t.messages.name),
        }
        if _get_by_id(tx, t.sessions, session_id) is None:
            raise NotFoundError(f"session {session_id} not found")
        _insert(tx, t.messages, values)
        _bump_message_count(tx, session_id, 1, now)
        tx.changed("messages", "insert", values["id"])
        tx.changed("sessions", "update", session_id)
        return dict(values, parts=parts)

    @write
    def update(self, tx: WriteTx, *, id: str, parts: list, model: str | None = None) -> dict:
        values: dict[str, Any] = {"parts": json.dumps(parts), "updated_at": tx.now_ms(), "finished_at": _finished_at(parts)}
        if model is not None:
            values["model"] = model
        row = _update_by_id(tx, t.messages, id, values)
        if row is None:
            raise NotFoundError(f"message {id} not found")
        tx.changed("messages", "update", id)
        return dict(_row(row), parts=parts)

    @read
    def get(self, tx: ReadTx, *, id: str) -> dict:
        row = _message_row(_get_by_id(tx, t.messages, id))
        if row is None:
            raise NotFoundError(f"message {id} not found")
        return row

    @read
    def list(self, tx: ReadTx, *, session_id: str) -> list:
        query = _statement(
            ("messages_of",),
            lambda: select(t.messages).where(t.messages.c.session_id == bindparam("sid")).order_by(t.messages.c.seq),
        )
        return [_message_row(r) for r in tx.conn.execute(query, {"sid": session_id})]

    @write
    def delete_from(self, tx: WriteTx, *, session_id: str, message_id: str) -> list:
        """Delete ``message_id`` and every later message of its session in one transaction (a
        conversation rewound); a summary among them is forgotten. Returns the deleted ids."""
        m = t.messages.c
        start = tx.conn.execute(select(m.seq).where(m.id == message_id, m.session_id == session_id)).scalar()
        if start is None:
            raise NotFoundError(f"message {message_id} not found in session {session_id}")
        ids = list(tx.conn.execute(select(m.id).where(m.session_id == session_id, m.seq >= start)).scalars())
        tx.conn.execute(delete(t.messages).where(m.session_id == session_id, m.seq >= start))
        now = tx.now_ms()
        _bump_message_count(tx, session_id, -len(ids), now)
        summary = tx.conn.execute(select(t.sessions.c.summary_message_id).where(t.sessions.c.id == session_id)).scalar()
        if summary in ids:
            tx.raw.execute("UPDATE sessions SET summary_message_id = NULL WHERE id = ?", (session_id,))
        for deleted in ids:
            tx.changed("messages", "delete", deleted)
        tx.changed("sessions", "update", session_id)
        return ids

    @write
    def delete(self, tx: WriteTx, *, id: str) -> None:
        row = tx.conn.execute(select(t.messages.c.session_id).where(t.messages.c.id == id)).first()
        if row is None:
            raise NotFoundError(f"message {id} not found")
        tx.conn.execute(delete(t.messages).where(t.messages.c.id == id))
        _bump_message_count(tx, row[0], -1, tx.now_ms())
        tx.changed("messages", "delete", id)


def _next_version(latest: str | None) -> str:
    if latest is None:
        return "initial"
    if latest == "initial":
        return "v1"
    if latest.startswith("v") and latest[1:].isdigit():
        return f"v{int(latest[1:]) + 1}"
    return f"v{WriteTx.now_ms()}"


class FileRepository(Repository):
    """Every version of every file the agent wrote, per session."""

    name = "files"

    @write
    def record_change(self, tx: WriteTx, *, session_id: str, path: str, before: str | None, after: str) -> dict:
        """Store the original content (version ``initial``) the first time, then the new version."""
        f = t.files.c
        latest = tx.conn.execute(
            select(f.version).where(f.session_id == session_id, f.path == path).order_by(f.seq.desc()).limit(1)
        ).scalar()
        now = tx.now_ms()
        created = []
        if latest is None:
            versions = [("initial", before if before is not None else "")]
            versions.append(("v1", after))
        else:
            versions = [(_next_version(latest), after)]
        for version, content in versions:
            values = {
                "id": new_id(),
                "session_id": session_id,
                "path": path,
                "content": content,
                "version": version,
                "created_at": now,
                "updated_at": now,
                "seq": tx.next_seq(t.files.name),
            }
            _insert(tx, t.files, values)
            tx.changed("files", "insert", values["id"])
            created.append(values)
        return created[-1]

    @read
    def list_by_session(self, tx: ReadTx, *, session_id: str) -> list:
        query = select(t.files).where(t.files.c.session_id == session_id).order_by(t.files.c.seq)
        return [_row(r) for r in tx.conn.execute(query)]

    @read
    def versions(self, tx: ReadTx, *, session_id: str, path: str) -> list:
        query = (
            select(t.files)
            .where(t.files.c.session_id == session_id, t.files.c.path == path)
            .order_by(t.files.c.seq)
        )
        return [_row(r) for r in tx.conn.execute(query)]

    @read
    def changed_paths(self, tx: ReadTx, *, session_id: str | None = None) -> list:
        query = select(t.files.c.session_id, t.files.c.path, func.count().label("versions")).group_by(
            t.files.c.session_id, t.files.c.path
        )
        if session_id:
            query = query.where(t.files.c.session_id == session_id)
        return [_row(r) for r in tx.conn.execute(query.order_by(t.files.c.path))]


class ProjectRepository(Repository):
    name = "projects"

    @write
    def upsert(self, tx: WriteTx, *, path: str, name: str | None = None, status: str = "stopped") -> dict:
        now = tx.now_ms()
        existing = _row(tx.conn.execute(select(t.projects).where(t.projects.c.path == path)).first())
        if existing:
            row = _update_by_id(tx, t.projects, existing["id"], {"last_opened": now, "updated_at": now})
            tx.changed("projects", "update", existing["id"])
            return _row(row)
        values = {
            "id": new_id(),
            "name": name or path.rstrip("/").rsplit("/", 1)[-1],
            "path": path,
            "status": status,
            "initialized": 0,
            "last_opened": now,
            "created_at": now,
            "updated_at": now,
        }
        _insert(tx, t.projects, values)
        tx.changed("projects", "insert", values["id"])
        return values

    @read
    def list(self, tx: ReadTx) -> list:
        return [_row(r) for r in tx.conn.execute(select(t.projects).order_by(t.projects.c.name))]


class PermissionGrantRepository(Repository):
    """Grants the user gave with "allow always" (persisted per working directory)."""

    name = "permission_grants"

    @write
    def add(self, tx: WriteTx, *, tool_name: str, action: str, pattern: str) -> dict:
        values = {
            "id": new_id(),
            "tool_name": tool_name,
            "action": action,
            "pattern": pattern,
            "created_at": tx.now_ms(),
        }
        _insert(tx, t.permission_grants, values)
        tx.changed("permission_grants", "insert", values["id"])
        return values

    @read
    def list(self, tx: ReadTx) -> list:
        return [_row(r) for r in tx.conn.execute(select(t.permission_grants).order_by(t.permission_grants.c.created_at))]


class GoalRepository(Repository):
    name = "goals"

    @write
    def create(
        self, tx: WriteTx, *, session_id: str, objective: str, max_iterations: int, max_duration_seconds: int
    ) -> dict:
        now = tx.now_ms()
        values = {
            "id": new_id(),
            "session_id": session_id,
            "objective": objective,
            "status": "running",
            "iteration": 0,
            "max_iterations": max_iterations,
            "max_duration_seconds": max_duration_seconds,
            "started_at": now,
            "completed_at": None,
            "last_progress": None,
            "next_step": None,
            "blocked_reason": None,
            "response": None,
            "stall_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        _insert(tx, t.session_goals, values)
        tx.changed("session_goals", "insert", values["id"])
        return values

    @write
    def update(self, tx: WriteTx, *, id: str, **fields: Any) -> dict:
        _check_fields("goals.update", fields, GOAL_FIELDS)
        row = _update_by_id(tx, t.session_goals, id, dict(fields, updated_at=tx.now_ms()))
        if row is None:
            raise NotFoundError(f"goal {id} not found")
        tx.changed("session_goals", "update", id)
        return _row(row)

    @read
    def latest_for_session(self, tx: ReadTx, *, session_id: str) -> dict | None:
        query = (
            select(t.session_goals)
            .where(t.session_goals.c.session_id == session_id)
            .order_by(t.session_goals.c.created_at.desc())
            .limit(1)
        )
        return _row(tx.conn.execute(query).first())


class SessionStateRepository(Repository):
    """Small JSON documents kept with a session (todo list, plan, checkpoints), written whole."""

    name = "session_state"

    @write
    def put(self, tx: WriteTx, *, session_id: str, key: str, value: Any) -> dict:
        if not isinstance(key, str) or not key:
            raise ValidationError("session_state.put: key must be a non-empty string")
        if _get_by_id(tx, t.sessions, session_id) is None:
            raise NotFoundError(f"session {session_id} not found")
        now = tx.now_ms()
        tx.raw.execute(
            "INSERT INTO session_state (session_id, key, value, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (session_id, key, json.dumps(value), now),
        )
        tx.changed("session_state", "update", f"{session_id}:{key}")
        return {"session_id": session_id, "key": key, "value": value, "updated_at": now}

    @read
    def get(self, tx: ReadTx, *, session_id: str, key: str) -> Any:
        """The stored value, or None."""
        row = tx.raw.execute(
            "SELECT value FROM session_state WHERE session_id = ? AND key = ?", (session_id, key)
        ).fetchone()
        return None if row is None else json.loads(row[0])


CORE_REPOSITORIES: list[type[Repository]] = [
    SessionRepository,
    MessageRepository,
    FileRepository,
    ProjectRepository,
    PermissionGrantRepository,
    GoalRepository,
    SessionStateRepository,
]
