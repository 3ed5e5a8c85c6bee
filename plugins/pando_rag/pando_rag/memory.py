"""Events and session memory.

An event is a subject, a text, metadata and a time.  Every session's transcript is one event,
``session-<session id>`` with subject ``session``, written again (upserted) when the session
changes — never one more row per message.  Changes reach the primary from every instance through
``pando_changes_committed``; ``SessionDebouncer`` waits for a session to be quiet for
``[rag] session_debounce`` seconds before its transcript is rebuilt.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from pando_core.errors import ValidationError

from .engine import checked_limit, checked_query

SESSION_SUBJECT = "session"
MAX_EVENT_CHARS = 200_000


def _epoch(value: Any, name: str) -> int | None:
    """An ISO date/time (``2026-12-01``, ``2026-12-01T10:00:00Z``) or epoch seconds, as epoch seconds."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"{name} must be an ISO date such as 2026-12-01, not {value!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp())
    raise ValidationError(f"{name} must be an ISO date string")


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


class EventLog:
    def __init__(self, engine) -> None:  # noqa: ANN001
        self.engine = engine
        self.catalog = engine.catalog

    def vector_metadata(self, event_id: str) -> dict:
        row = self.catalog.one("SELECT subject, event_at, session_id FROM events WHERE id = ?", (event_id,))
        return self._metadata(row["subject"], row["event_at"], row["session_id"])

    @staticmethod
    def _metadata(subject: str, event_at: int, session_id: str | None) -> dict:
        meta: dict[str, Any] = {"subject": subject, "event_at": event_at}
        if session_id:
            meta["session_id"] = session_id
        return meta

    def save(self, subject: str, content: str, metadata: dict | None = None, *, id: str | None = None, event_at: int | None = None) -> dict:
        if not isinstance(subject, str) or not subject.strip():
            raise ValidationError("subject must be a non-empty string")
        if not isinstance(content, str) or not content.strip():
            raise ValidationError("content must be a non-empty string")
        if len(content) > MAX_EVENT_CHARS:
            raise ValidationError(f"content is {len(content):,} characters long; at most {MAX_EVENT_CHARS:,} are kept")
        if metadata is not None and not isinstance(metadata, dict):
            raise ValidationError("metadata must be an object")
        metadata = dict(metadata or {})
        event_id = id or f"evt-{uuid.uuid4().hex}"
        now = int(time.time())
        at = now if event_at is None else int(event_at)
        session_id = metadata.get("session_id") if isinstance(metadata.get("session_id"), str) else None
        vector = self.engine.embed([content]).tolist()

        def apply(conn) -> None:  # noqa: ANN001
            conn.execute(
                "INSERT INTO events(id, subject, content, metadata, session_id, event_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET subject = excluded.subject, content = excluded.content, "
                "metadata = excluded.metadata, session_id = excluded.session_id, event_at = excluded.event_at",
                (event_id, subject, content, json.dumps(metadata), session_id, at, now),
            )

        self.engine.write("events", apply, [event_id], vector, [content[:4000]], [self._metadata(subject, at, session_id)])
        return {"id": event_id, "subject": subject, "event_at": _iso(at)}

    def delete(self, event_id: str) -> dict:
        def apply(conn) -> bool:  # noqa: ANN001
            return conn.execute("DELETE FROM events WHERE id = ?", (event_id,)).rowcount > 0

        with self.engine.lock:
            with self.catalog.transaction() as conn:
                deleted = apply(conn)
                self.engine.vectors.delete("events", [event_id])
        return {"id": event_id, "deleted": deleted}

    def count(self, subject: str | None = None) -> int:
        with self.engine.lock:
            if subject:
                return self.catalog.scalar("SELECT count(*) FROM events WHERE subject = ?", (subject,))
            return self.catalog.scalar("SELECT count(*) FROM events")

    def _present(self, row: dict, score: float | None = None, similarity: float | None = None) -> dict:
        out = {
            "source": "events",
            "id": row["id"],
            "subject": row["subject"],
            "content": row["content"],
            "metadata": json.loads(row["metadata"]),
            "event_at": _iso(row["event_at"]),
        }
        if score is not None:
            out["score"] = round(score, 6)
            out["similarity"] = round(similarity or 0.0, 4)
        return out

    def list(self, subject: str | None = None, limit: int | None = 20, offset: int = 0) -> list[dict]:
        limit = checked_limit(limit, 20, 1000)
        where, params = ("WHERE subject = ?", (subject,)) if subject else ("", ())
        with self.engine.lock:
            rows = self.catalog.rows(f"SELECT * FROM events {where} ORDER BY event_at DESC, rowid DESC LIMIT ? OFFSET ?", (*params, limit, max(0, int(offset or 0))))
        return [self._present(row) for row in rows]

    def search(
        self,
        query: str | None = None,
        subject: str | None = None,
        last_hours: float | None = None,
        last_days: float | None = None,
        from_date: Any = None,
        to_date: Any = None,
        limit: int | None = 10,
    ) -> list[dict]:
        limit = checked_limit(limit, 10, 100)
        query = checked_query(query or "", allow_empty=True)
        start, end = _epoch(from_date, "from_date"), _epoch(to_date, "to_date")
        now = time.time()
        for value, name, seconds in ((last_hours, "last_hours", 3600), (last_days, "last_days", 86400)):
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise ValidationError(f"{name} must be a positive number")
                since = int(now - value * seconds)
                start = since if start is None else max(start, since)
        clauses, params, filters = [], [], []
        if subject:
            clauses.append("t.subject = ?")
            params.append(subject)
            filters.append({"subject": subject})
        if start is not None:
            clauses.append("t.event_at >= ?")
            params.append(start)
            filters.append({"event_at": {"$gte": start}})
        if end is not None:
            clauses.append("t.event_at <= ?")
            params.append(end)
            filters.append({"event_at": {"$lte": end}})
        if not query.strip():
            # no query: the newest events that pass the filters
            where = " AND ".join(clauses).replace("t.", "")
            with self.engine.lock:
                rows = self.catalog.rows(
                    f"SELECT * FROM events {'WHERE ' + where if where else ''} ORDER BY event_at DESC, rowid DESC LIMIT ?", (*params, limit)
                )
            return [self._present(row, 1.0, 1.0) for row in rows]
        vector_where = None if not filters else filters[0] if len(filters) == 1 else {"$and": filters}
        hits = self.engine.hybrid("events", query, limit, vector_where=vector_where, keyword_where=" AND ".join(clauses), keyword_params=tuple(params))
        if not hits:
            return []
        with self.engine.lock:
            rows = {r["id"]: r for r in self.catalog.rows(f"SELECT * FROM events WHERE id IN ({','.join('?' * len(hits))})", [h.id for h in hits])}
        return [self._present(rows[h.id], h.score, h.similarity) for h in hits if h.id in rows]

    # -- session transcripts -----------------------------------------------------------------

    def index_session(self, session: dict, messages: list[dict]) -> dict | None:
        """Upsert the session's transcript as its one event; None when it has nothing to say."""
        text = transcript(session, messages)
        if text is None:
            return None
        metadata = {
            "session_id": session["id"],
            "title": session.get("title") or "",
            "message_count": len(messages),
            "source": "pando_session",
            "updated_at": int(time.time()),
        }
        return self.save(SESSION_SUBJECT, text[-MAX_EVENT_CHARS:], metadata, id=f"session-{session['id']}")


def _part_text(part: dict) -> str | None:
    data = part.get("data") or {}
    kind = part.get("type")
    if kind in ("text", "reasoning"):
        return data.get("text") or None
    if kind == "tool_call":
        return f"{data.get('name', 'tool')}\ninput: {json.dumps(data.get('input'), ensure_ascii=False)[:2000]}"
    if kind == "tool_result":
        content = data.get("content")
        content = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        return f"{data.get('name', 'tool')}\nresult: {(content or '')[:2000]}"
    return None


def transcript(session: dict, messages: list[dict]) -> str | None:
    lines = [f"Session title: {session.get('title') or '(untitled)'}"]
    spoken = False
    for message in messages:
        texts = [t for t in (_part_text(p) for p in message.get("parts") or []) if t]
        if texts:
            spoken = True
            lines.append(f"{str(message.get('role', '')).upper()}:\n" + "\n".join(texts))
    return "\n\n".join(lines) if spoken else None


class SessionDebouncer:
    """Sessions to re-index, each due ``delay`` seconds after its last change."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()
        self.wakeup = threading.Event()

    def touch(self, session_id: str, delay: float | None = None) -> None:
        with self._lock:
            self._due[session_id] = time.monotonic() + (self.delay if delay is None else delay)
        self.wakeup.set()

    def pop_due(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            due = [sid for sid, at in self._due.items() if at <= now]
            for sid in due:
                del self._due[sid]
        return due

    def next_in(self) -> float | None:
        with self._lock:
            if not self._due:
                return None
            return max(0.0, min(self._due.values()) - time.monotonic())

    def pending(self) -> int:
        with self._lock:
            return len(self._due)
