"""The evaluator's tables and its repository (``app.store.evaluator``).

Every write is a ``@write`` method, so a secondary's writes go to the primary with idempotency
keys. ``finish_evaluation`` stores a session's score, its learned rule (retiring the weakest when
``max_rules`` are active) and clears the session from the queue in one transaction: an evaluation
cut short by a crash leaves nothing behind, and the new primary does it again, still once.

Prompt-variant statistics are not kept in a table of their own: a variant's uses and reward are
counted from ``evaluator_template_uses`` joined with ``evaluator_scores``, so they can never drift
from the scores (a re-scored session counts once, with its latest reward).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from pando_core.db import Component, Migration, Repository, read, write
from pando_core.errors import NotFoundError, ValidationError
from pando_core.ids import new_id

DEFAULT_TEMPLATE = "default"  # the arm that keeps the core's own text of a section

MIGRATIONS = [
    Migration(
        1,
        "evaluator tables",
        [
            """CREATE TABLE evaluator_pending (
                session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
                origin TEXT NOT NULL DEFAULT '',
                ended_at INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT
            )""",
            """CREATE TABLE evaluator_scores (
                session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
                reward REAL NOT NULL,
                success_score REAL NOT NULL,
                efficiency_score REAL NOT NULL,
                corrections INTEGER NOT NULL,
                tokens INTEGER NOT NULL,
                message_count INTEGER NOT NULL,
                task_type TEXT NOT NULL DEFAULT 'general',
                judge_model TEXT,
                judge_analysis TEXT,
                judge_error TEXT,
                rule_id TEXT,
                evaluations INTEGER NOT NULL DEFAULT 1,
                evaluated_by TEXT NOT NULL DEFAULT '',
                duration_ms INTEGER NOT NULL DEFAULT 0,
                evaluated_at INTEGER NOT NULL
            )""",
            "CREATE INDEX idx_evaluator_scores_time ON evaluator_scores (evaluated_at)",
            """CREATE TABLE evaluator_templates (
                id TEXT PRIMARY KEY,
                section TEXT NOT NULL,
                content TEXT NOT NULL,
                version INTEGER NOT NULL,
                is_active INTEGER NOT NULL DEFAULT 1,
                created_at INTEGER NOT NULL,
                UNIQUE (section, version)
            )""",
            """CREATE TABLE evaluator_template_uses (
                session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                section TEXT NOT NULL,
                template_id TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (session_id, section)
            )""",
            """CREATE TABLE evaluator_rules (
                id TEXT PRIMARY KEY,
                title TEXT NOT NULL,
                content TEXT NOT NULL,
                task_type TEXT NOT NULL DEFAULT 'general',
                source_session_id TEXT,
                confidence REAL NOT NULL,
                usage_count INTEGER NOT NULL DEFAULT 0,
                success_rate REAL,
                is_active INTEGER NOT NULL DEFAULT 1,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            )""",
            """CREATE TABLE evaluator_rule_uses (
                rule_id TEXT NOT NULL REFERENCES evaluator_rules (id) ON DELETE CASCADE,
                session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (rule_id, session_id)
            )""",
        ],
    )
]

# A rule's strength: its sessions' mean reward once it has been used in scored sessions, the
# judge's confidence before. New rules can then be shown and earn a record.
_STRENGTH = "coalesce(success_rate, confidence)"


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in result]


def _first(result: Any) -> dict[str, Any] | None:
    row = result.first()
    return dict(row._mapping) if row is not None else None


class EvaluatorRepository(Repository):
    name = "evaluator"

    # -- the queue of ended sessions ------------------------------------------------------------

    @write
    def mark_ended(self, tx, *, session_id: str, origin: str = "") -> dict:
        """Queue a session for evaluation (again, when it was continued since its last score)."""
        exists = tx.conn.execute(text("SELECT 1 FROM sessions WHERE id = :s"), {"s": session_id}).first()
        if exists is None:
            raise NotFoundError(f"session {session_id} not found")
        tx.conn.execute(
            text(
                "INSERT INTO evaluator_pending (session_id, origin, ended_at) VALUES (:s, :o, :t)"
                " ON CONFLICT (session_id) DO UPDATE SET origin = excluded.origin, ended_at = excluded.ended_at"
            ),
            {"s": session_id, "o": origin, "t": tx.now_ms()},
        )
        tx.changed("evaluator_pending", "insert", session_id)
        return {"session_id": session_id, "queued": True}

    @write
    def record_failure(self, tx, *, session_id: str, error: str) -> dict:
        tx.conn.execute(
            text("UPDATE evaluator_pending SET attempts = attempts + 1, last_error = :e WHERE session_id = :s"),
            {"s": session_id, "e": error[:500]},
        )
        return {"session_id": session_id}

    @write
    def drop_pending(self, tx, *, session_id: str) -> dict:
        tx.conn.execute(text("DELETE FROM evaluator_pending WHERE session_id = :s"), {"s": session_id})
        return {"session_id": session_id}

    @read
    def pending(self, tx, *, max_attempts: int = 3, limit: int = 1000) -> list:
        """Ended sessions waiting for their evaluation, oldest first."""
        rows = tx.conn.execute(
            text(
                "SELECT session_id FROM evaluator_pending WHERE attempts < :a ORDER BY ended_at, session_id LIMIT :n"
            ),
            {"a": max_attempts, "n": limit},
        )
        return [row[0] for row in rows]

    @read
    def idle_sessions(self, tx, *, idle_before: int, limit: int = 100) -> list:
        """Top-level sessions untouched since ``idle_before`` (ms) with messages no score covers yet."""
        rows = tx.conn.execute(
            text(
                "SELECT s.id FROM sessions s LEFT JOIN evaluator_scores e ON e.session_id = s.id"
                " WHERE s.parent_session_id IS NULL AND s.message_count > 0 AND s.updated_at < :t"
                " AND (e.session_id IS NULL OR e.message_count < s.message_count)"
                " AND s.id NOT IN (SELECT session_id FROM evaluator_pending)"
                " ORDER BY s.updated_at LIMIT :n"
            ),
            {"t": idle_before, "n": limit},
        )
        return [row[0] for row in rows]

    @read
    def ended_unscored(self, tx, *, limit: int = 1000) -> list:
        """Sessions the core marked ended, since the evaluator's tables exist, that no score covers
        (ended while no instance ran the evaluator, or on a primary that died before queueing them)."""
        rows = tx.conn.execute(
            text(
                "SELECT s.id FROM sessions s LEFT JOIN evaluator_scores e ON e.session_id = s.id"
                " WHERE s.parent_session_id IS NULL AND s.message_count > 0 AND s.ended_at IS NOT NULL"
                " AND s.ended_at >= s.updated_at"
                " AND s.ended_at >= (SELECT min(applied_at) FROM schema_migrations WHERE component = 'evaluator')"
                " AND (e.session_id IS NULL OR e.message_count < s.message_count)"
                " ORDER BY s.ended_at LIMIT :n"
            ),
            {"n": limit},
        )
        return [row[0] for row in rows]

    # -- scores -----------------------------------------------------------------------------------

    @read
    def score(self, tx, *, session_id: str) -> dict | None:
        return _first(tx.conn.execute(text("SELECT * FROM evaluator_scores WHERE session_id = :s"), {"s": session_id}))

    @read
    def recent_tokens(self, tx, *, limit: int = 50, exclude: str = "") -> list:
        """Token totals of the last ``limit`` scored sessions (the efficiency baseline)."""
        rows = tx.conn.execute(
            text(
                "SELECT tokens FROM evaluator_scores WHERE session_id != :x"
                " ORDER BY evaluated_at DESC, session_id LIMIT :n"
            ),
            {"x": exclude, "n": limit},
        )
        return [int(row[0]) for row in rows]

    @read
    def score_history(self, tx, *, limit: int = 500) -> list:
        """The latest ``limit`` scores, oldest first, with their session's title (the web chart)."""
        rows = tx.conn.execute(
            text(
                "SELECT * FROM (SELECT s.session_id, s.reward, s.task_type, s.evaluated_at, t.title"
                " FROM evaluator_scores s LEFT JOIN sessions t ON t.id = s.session_id"
                " ORDER BY s.evaluated_at DESC, s.session_id LIMIT :n) ORDER BY evaluated_at, session_id"
            ),
            {"n": limit},
        )
        return _rows(rows)

    @read
    def scored_count(self, tx) -> int:
        return int(tx.conn.execute(text("SELECT count(*) FROM evaluator_scores")).scalar_one())

    @write
    def finish_evaluation(
        self,
        tx,
        *,
        session_id: str,
        score: dict,
        rule: dict | None = None,
        max_rules: int = 100,
        evaluated_by: str = "",
    ) -> dict:
        """Store one evaluation: the score, the rule learned from it, the queue entry cleared.

        ``score["message_count"]`` says how much of the session was judged: a score that already
        covers as many messages is kept and nothing is stored (an evaluation is done once)."""
        existing = _first(
            tx.conn.execute(text("SELECT * FROM evaluator_scores WHERE session_id = :s"), {"s": session_id})
        )
        tx.conn.execute(text("DELETE FROM evaluator_pending WHERE session_id = :s"), {"s": session_id})
        if existing is not None and existing["message_count"] >= int(score["message_count"]):
            return {"stored": False, "score": existing, "rule": None, "retired": None}
        now = tx.now_ms()
        rule_row, retired = (self._add_rule(tx, session_id, rule, max_rules, now) if rule else (None, None))
        values = {
            "session_id": session_id,
            "reward": float(score["reward"]),
            "success_score": float(score["success_score"]),
            "efficiency_score": float(score["efficiency_score"]),
            "corrections": int(score["corrections"]),
            "tokens": int(score["tokens"]),
            "message_count": int(score["message_count"]),
            "task_type": str(score.get("task_type") or "general"),
            "judge_model": score.get("judge_model"),
            "judge_analysis": score.get("judge_analysis"),
            "judge_error": score.get("judge_error"),
            "rule_id": rule_row["id"] if rule_row else None,
            "evaluated_by": evaluated_by,
            "duration_ms": int(score.get("duration_ms") or 0),
            "evaluated_at": now,
        }
        columns = ", ".join(values)
        updates = ", ".join(f"{k} = excluded.{k}" for k in values if k != "session_id")
        tx.conn.execute(
            text(
                f"INSERT INTO evaluator_scores ({columns}) VALUES ({', '.join(':' + k for k in values)})"
                f" ON CONFLICT (session_id) DO UPDATE SET {updates}, evaluations = evaluator_scores.evaluations + 1"
            ),
            values,
        )
        # the rules this session was shown now have one more reward to their record
        tx.conn.execute(
            text(
                "UPDATE evaluator_rules SET updated_at = :t, success_rate = ("
                " SELECT avg(e.reward) FROM evaluator_rule_uses u JOIN evaluator_scores e ON e.session_id = u.session_id"
                " WHERE u.rule_id = evaluator_rules.id)"
                " WHERE id IN (SELECT rule_id FROM evaluator_rule_uses WHERE session_id = :s)"
            ),
            {"t": now, "s": session_id},
        )
        tx.changed("evaluator_scores", "update" if existing else "insert", session_id)
        stored = _first(tx.conn.execute(text("SELECT * FROM evaluator_scores WHERE session_id = :s"), {"s": session_id}))
        return {"stored": True, "score": stored, "rule": rule_row, "retired": retired}

    def _add_rule(self, tx, session_id: str, rule: dict, max_rules: int, now: int) -> tuple[dict, str | None]:
        retired = None
        active = int(tx.conn.execute(text("SELECT count(*) FROM evaluator_rules WHERE is_active = 1")).scalar_one())
        if max_rules > 0 and active >= max_rules:
            weakest = tx.conn.execute(
                text(
                    f"SELECT id FROM evaluator_rules WHERE is_active = 1"
                    f" ORDER BY {_STRENGTH}, usage_count, created_at LIMIT 1"
                )
            ).first()
            if weakest is not None:
                retired = weakest[0]
                tx.conn.execute(
                    text("UPDATE evaluator_rules SET is_active = 0, updated_at = :t WHERE id = :i"),
                    {"t": now, "i": retired},
                )
                tx.changed("evaluator_rules", "update", retired)
        task_type = str(rule.get("task_type") or "general")
        row = {
            "id": new_id(),
            "title": f"{task_type} rule",
            "content": str(rule["content"]),
            "task_type": task_type,
            "source_session_id": session_id,
            "confidence": float(rule.get("confidence") or 0.0),
            "usage_count": 0,
            "success_rate": None,
            "is_active": 1,
            "created_at": now,
            "updated_at": now,
        }
        tx.conn.execute(
            text(f"INSERT INTO evaluator_rules ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"), row
        )
        tx.changed("evaluator_rules", "insert", row["id"])
        return row, retired

    # -- learned rules ----------------------------------------------------------------------------

    @read
    def active_rules(self, tx, *, task_type: str = "general", limit: int = 10) -> list:
        return _rows(
            tx.conn.execute(
                text(
                    "SELECT * FROM evaluator_rules WHERE is_active = 1 AND task_type IN (:t, 'general')"
                    f" ORDER BY {_STRENGTH} DESC, usage_count DESC, created_at DESC LIMIT :n"
                ),
                {"t": task_type, "n": limit},
            )
        )

    @read
    def rules(self, tx, *, include_inactive: bool = True) -> list:
        where = "" if include_inactive else " WHERE is_active = 1"
        return _rows(
            tx.conn.execute(text(f"SELECT * FROM evaluator_rules{where} ORDER BY is_active DESC, {_STRENGTH} DESC, created_at"))
        )

    @write
    def set_rule_active(self, tx, *, rule_id: str, active: bool) -> dict:
        row = _first(tx.conn.execute(text("SELECT * FROM evaluator_rules WHERE id = :i"), {"i": rule_id}))
        if row is None:
            matches = tx.conn.execute(
                text("SELECT id FROM evaluator_rules WHERE id LIKE :p LIMIT 2"), {"p": rule_id.replace("%", "") + "%"}
            ).all()
            if len(matches) != 1:
                raise NotFoundError(f"rule {rule_id} not found" if not matches else f"rule id {rule_id} is ambiguous")
            rule_id = matches[0][0]
        tx.conn.execute(
            text("UPDATE evaluator_rules SET is_active = :a, updated_at = :t WHERE id = :i"),
            {"a": 1 if active else 0, "t": tx.now_ms(), "i": rule_id},
        )
        tx.changed("evaluator_rules", "update", rule_id)
        return _first(tx.conn.execute(text("SELECT * FROM evaluator_rules WHERE id = :i"), {"i": rule_id}))

    @write
    def record_rule_uses(self, tx, *, session_id: str, rule_ids: list) -> dict:
        """The session was shown these rules: each counts once per session, however many turns."""
        now = tx.now_ms()
        added = 0
        for rule_id in rule_ids:
            result = tx.conn.execute(
                text(
                    "INSERT INTO evaluator_rule_uses (rule_id, session_id, created_at) VALUES (:r, :s, :t)"
                    " ON CONFLICT (rule_id, session_id) DO NOTHING"
                ),
                {"r": rule_id, "s": session_id, "t": now},
            )
            if result.rowcount:
                added += 1
                tx.conn.execute(
                    text("UPDATE evaluator_rules SET usage_count = usage_count + 1 WHERE id = :r"), {"r": rule_id}
                )
        if added:
            tx.changed("evaluator_rules", "update", *rule_ids)
        return {"session_id": session_id, "added": added}

    # -- prompt variants --------------------------------------------------------------------------

    @write
    def add_template(self, tx, *, section: str, content: str) -> dict:
        section, content = section.strip(), content.strip()
        if not section or not content:
            raise ValidationError("a prompt variant needs a section name and some text")
        version = int(
            tx.conn.execute(
                text("SELECT coalesce(max(version), 0) FROM evaluator_templates WHERE section = :s"), {"s": section}
            ).scalar_one()
        ) + 1
        row = {"id": new_id(), "section": section, "content": content, "version": version, "is_active": 1, "created_at": tx.now_ms()}
        tx.conn.execute(
            text(
                "INSERT INTO evaluator_templates (id, section, content, version, is_active, created_at)"
                " VALUES (:id, :section, :content, :version, :is_active, :created_at)"
            ),
            row,
        )
        tx.changed("evaluator_templates", "insert", row["id"])
        return row

    @read
    def templates(self, tx, *, section: str | None = None, active_only: bool = False) -> list:
        clauses, params = [], {}
        if section is not None:
            clauses.append("section = :s")
            params["s"] = section
        if active_only:
            clauses.append("is_active = 1")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        return _rows(tx.conn.execute(text(f"SELECT * FROM evaluator_templates{where} ORDER BY section, version"), params))

    @read
    def sections_with_variants(self, tx) -> list:
        rows = tx.conn.execute(text("SELECT DISTINCT section FROM evaluator_templates WHERE is_active = 1 ORDER BY section"))
        return [row[0] for row in rows]

    @read
    def template_stats(self, tx, *, section: str) -> list:
        """Per variant of ``section`` (the default included): scored uses and their total reward."""
        return _rows(
            tx.conn.execute(
                text(
                    "SELECT u.template_id AS template_id, count(*) AS times_used, sum(e.reward) AS total_reward"
                    " FROM evaluator_template_uses u JOIN evaluator_scores e ON e.session_id = u.session_id"
                    " WHERE u.section = :s GROUP BY u.template_id"
                ),
                {"s": section},
            )
        )

    @read
    def template_uses(self, tx, *, session_id: str) -> dict:
        rows = tx.conn.execute(
            text("SELECT section, template_id FROM evaluator_template_uses WHERE session_id = :s"), {"s": session_id}
        )
        return {row[0]: row[1] for row in rows}

    @write
    def record_template_use(self, tx, *, session_id: str, section: str, template_id: str) -> dict:
        """The variant of ``section`` this session uses; the first recorded stays (a session keeps its variant)."""
        tx.conn.execute(
            text(
                "INSERT INTO evaluator_template_uses (session_id, section, template_id, created_at)"
                " VALUES (:s, :n, :t, :c) ON CONFLICT (session_id, section) DO NOTHING"
            ),
            {"s": session_id, "n": section, "t": template_id, "c": tx.now_ms()},
        )
        row = tx.conn.execute(
            text("SELECT template_id FROM evaluator_template_uses WHERE session_id = :s AND section = :n"),
            {"s": session_id, "n": section},
        ).first()
        return {"session_id": session_id, "section": section, "template_id": row[0]}

    # -- stats ------------------------------------------------------------------------------------

    @read
    def summary(self, tx) -> dict:
        row = tx.conn.execute(
            text("SELECT count(*), avg(reward), max(evaluated_at), avg(duration_ms) FROM evaluator_scores")
        ).first()
        pending = tx.conn.execute(text("SELECT count(*) FROM evaluator_pending")).scalar_one()
        active = tx.conn.execute(text("SELECT count(*) FROM evaluator_rules WHERE is_active = 1")).scalar_one()
        last = _first(
            tx.conn.execute(text("SELECT session_id, reward, evaluated_at FROM evaluator_scores ORDER BY evaluated_at DESC LIMIT 1"))
        )
        return {
            "sessions_scored": int(row[0]),
            "average_reward": float(row[1]) if row[1] is not None else None,
            "last_evaluated_at": row[2],
            "average_duration_ms": float(row[3]) if row[3] is not None else None,
            "last_evaluation": last,
            "pending": int(pending),
            "active_rules": int(active),
        }


COMPONENT = Component("evaluator", MIGRATIONS, [EvaluatorRepository])
