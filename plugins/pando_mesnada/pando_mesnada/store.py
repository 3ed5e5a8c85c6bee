"""The tasks table and its repository: every task write goes through here.

Declared as a plugin ``Component``, so the primary runs the migrations and a write made on a
secondary (or by a task supervisor that bootstrapped as one) is proxied to the primary with an
idempotency key and survives a failover. Rows are returned as dicts with ``tags``,
``dependencies`` and ``extra`` decoded from JSON.
"""

from __future__ import annotations

import json
from typing import Any

from pando_core.db import Component, Migration, Repository, read, write
from pando_core.errors import NotFoundError, ValidationError

from .model import CANCELLED, PAUSED, PENDING, RUNNING, STATUSES

TABLE = "mesnada_tasks"

_CREATE = f"""CREATE TABLE {TABLE} (
    id TEXT PRIMARY KEY,
    prompt TEXT NOT NULL,
    work_dir TEXT NOT NULL,
    status TEXT NOT NULL,
    engine TEXT NOT NULL,
    model TEXT,
    persona TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    dependencies TEXT NOT NULL DEFAULT '[]',
    priority INTEGER NOT NULL DEFAULT 0,
    timeout_seconds REAL,
    isolation TEXT NOT NULL DEFAULT 'none',
    backend TEXT NOT NULL DEFAULT 'local',
    include_dependency_logs INTEGER NOT NULL DEFAULT 0,
    dependency_log_lines INTEGER NOT NULL DEFAULT 100,
    extra TEXT NOT NULL DEFAULT '{{}}',
    pid INTEGER,
    pid_start TEXT,
    child_pid INTEGER,
    exit_code INTEGER,
    error TEXT,
    output_tail TEXT NOT NULL DEFAULT '',
    log_file TEXT NOT NULL,
    log_bytes INTEGER NOT NULL DEFAULT 0,
    progress_pct INTEGER,
    progress_desc TEXT,
    progress_at INTEGER,
    branch TEXT,
    worktree TEXT,
    diff_stat TEXT,
    retry_of TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    completed_at INTEGER,
    updated_at INTEGER NOT NULL,
    seq INTEGER NOT NULL
)"""

MIGRATIONS = [
    Migration(
        1,
        "mesnada tasks",
        [
            _CREATE,
            f"CREATE INDEX {TABLE}_status ON {TABLE} (status, priority, created_at)",
        ],
    ),
]

_JSON_COLUMNS = ("tags", "dependencies", "extra")
# what update() may change (the rest has its own method with its own rules)
UPDATABLE = frozenset(
    {
        "prompt", "work_dir", "engine", "model", "persona", "tags", "dependencies", "priority",
        "timeout_seconds", "isolation", "include_dependency_logs", "dependency_log_lines", "extra",
        "pid", "pid_start", "child_pid", "exit_code", "error", "output_tail", "log_bytes",
        "branch", "worktree", "diff_stat", "status", "started_at", "completed_at", "attempt",
    }
)  # fmt: skip


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for key in _JSON_COLUMNS:
        if key in out and not isinstance(out[key], str):
            out[key] = json.dumps(out[key])
    if "include_dependency_logs" in out:
        out["include_dependency_logs"] = int(bool(out["include_dependency_logs"]))
    return out


def _decode(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    task = dict(row)
    for key in _JSON_COLUMNS:
        task[key] = json.loads(task[key] or ("{}" if key == "extra" else "[]"))
    task["include_dependency_logs"] = bool(task["include_dependency_logs"])
    task["progress"] = (
        None
        if task["progress_pct"] is None and not task["progress_desc"]
        else {
            "percentage": task.pop("progress_pct"),
            "description": task.pop("progress_desc"),
            "updated_at": task.pop("progress_at"),
        }
    )
    for key in ("progress_pct", "progress_desc", "progress_at"):
        task.pop(key, None)
    return task


def _rows(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [_decode(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]


def _fetch(tx: Any, task_id: str) -> dict[str, Any]:
    rows = _rows(tx.raw.execute(f"SELECT * FROM {TABLE} WHERE id = ?", (task_id,)))
    if not rows:
        raise NotFoundError(f"no task {task_id}")
    return rows[0]


def _set(tx: Any, task_id: str, values: dict[str, Any]) -> dict[str, Any]:
    values = _encode(values)
    values["updated_at"] = tx.now_ms()
    keys = sorted(values)
    cursor = tx.raw.execute(
        f"UPDATE {TABLE} SET {', '.join(f'{k} = ?' for k in keys)} WHERE id = ?",
        (*(values[k] for k in keys), task_id),
    )
    if cursor.rowcount == 0:
        raise NotFoundError(f"no task {task_id}")
    tx.changed(TABLE, "update", task_id)
    return _fetch(tx, task_id)


class TaskRepository(Repository):
    name = "mesnada"

    @write
    def create(self, tx: Any, *, task: dict) -> dict:
        values = _encode(task)
        now = tx.now_ms()
        values.setdefault("created_at", now)
        values["updated_at"] = now
        values["seq"] = tx.next_seq(TABLE)
        keys = list(values)
        tx.raw.execute(
            f"INSERT INTO {TABLE} ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
            tuple(values[k] for k in keys),
        )
        tx.changed(TABLE, "insert", values["id"])
        return _fetch(tx, values["id"])

    @read
    def get(self, tx: Any, *, id: str) -> dict:
        return _fetch(tx, id)

    @read
    def find(self, tx: Any, *, id: str) -> dict | None:
        rows = _rows(tx.raw.execute(f"SELECT * FROM {TABLE} WHERE id = ?", (id,)))
        return rows[0] if rows else None

    @read
    def list(
        self, tx: Any, *, status: list | None = None, tags: list | None = None, limit: int | None = None, offset: int = 0
    ) -> list:
        """Newest first; ``tags``: a task must carry all of them."""
        sql, args = f"SELECT * FROM {TABLE}", []
        if status:
            sql += f" WHERE status IN ({', '.join('?' * len(status))})"
            args.extend(status)
        sql += " ORDER BY created_at DESC, seq DESC"
        rows = _rows(tx.raw.execute(sql, args))
        if tags:
            wanted = set(tags)
            rows = [row for row in rows if wanted <= set(row["tags"])]
        rows = rows[offset:]
        return rows[:limit] if limit else rows

    @read
    def queue(self, tx: Any) -> list:
        """Pending tasks in the order they may start: priority (high first), then age."""
        return _rows(
            tx.raw.execute(f"SELECT * FROM {TABLE} WHERE status = ? ORDER BY priority DESC, created_at, seq", (PENDING,))
        )

    @read
    def stats(self, tx: Any) -> dict:
        counts = dict.fromkeys(STATUSES, 0)
        for status, count in tx.raw.execute(f"SELECT status, count(*) FROM {TABLE} GROUP BY status"):
            counts[status] = count
        running = _rows(tx.raw.execute(f"SELECT * FROM {TABLE} WHERE status = ? ORDER BY started_at", (RUNNING,)))
        return {
            "total": sum(counts.values()),
            "by_status": counts,
            "running": [{"id": t["id"], "progress": t["progress"], "started_at": t["started_at"]} for t in running],
        }

    @write
    def update(self, tx: Any, *, id: str, fields: dict) -> dict:
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise ValidationError(f"mesnada.update: unknown fields {', '.join(sorted(unknown))}")
        return _set(tx, id, fields)

    @write
    def mark_started(self, tx: Any, *, id: str, fields: dict) -> dict:
        """pending -> running; refused (ValidationError) when the task is no longer pending."""
        task = _fetch(tx, id)
        if task["status"] != PENDING:
            raise ValidationError(f"task {id} is {task['status']}, not pending")
        return _set(tx, id, {**fields, "status": RUNNING, "started_at": tx.now_ms(), "attempt": task["attempt"] + 1})

    @write
    def finish(self, tx: Any, *, id: str, status: str, fields: dict, attempt: int | None = None) -> dict:
        """Record the end of a run. A task someone already cancelled or paused keeps that status
        (its exit code and output are still recorded); an end already recorded, or one from an
        older attempt (a relaunch happened since), changes nothing."""
        task = _fetch(tx, id)
        if attempt is not None and attempt != task["attempt"]:
            return task
        if task["completed_at"] is not None:
            return task
        values = {**fields, "status": status, "completed_at": tx.now_ms()}
        if task["status"] in (CANCELLED, PAUSED):  # stopped on purpose: that stays its status
            values["status"] = task["status"]
        if values["status"] == PAUSED:
            values.pop("completed_at")  # a paused task may be resumed or relaunched
        updated = _set(tx, id, values)
        tx.changed(TABLE, "ended", id)
        return updated

    @write
    def set_progress(self, tx: Any, *, id: str, percentage: int | None = None, description: str | None = None) -> dict:
        if percentage is not None and not 0 <= int(percentage) <= 100:
            raise ValidationError("progress percentage must be between 0 and 100")
        values = {"progress_pct": percentage, "progress_desc": description, "progress_at": tx.now_ms()}
        values["updated_at"] = values["progress_at"]
        keys = sorted(values)
        cursor = tx.raw.execute(
            f"UPDATE {TABLE} SET {', '.join(f'{k} = ?' for k in keys)} WHERE id = ?", (*(values[k] for k in keys), id)
        )
        if cursor.rowcount == 0:
            raise NotFoundError(f"no task {id}")
        tx.changed(TABLE, "update", id)
        return _fetch(tx, id)

    @write
    def record_output(self, tx: Any, *, id: str, output_tail: str, log_bytes: int) -> dict:
        """The running task's output so far (the orchestrator's tail of its log)."""
        return _set(tx, id, {"output_tail": output_tail, "log_bytes": log_bytes})

    @write
    def delete(self, tx: Any, *, id: str) -> bool:
        cursor = tx.raw.execute(f"DELETE FROM {TABLE} WHERE id = ?", (id,))
        if cursor.rowcount:
            tx.changed(TABLE, "delete", id)
        return bool(cursor.rowcount)


def component() -> Component:
    return Component("mesnada", list(MIGRATIONS), [TaskRepository])
