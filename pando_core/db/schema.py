"""The core's tables (SQLAlchemy Core) and the migrations that create them.

Timestamps are milliseconds since the epoch; ``seq`` columns give a stable order for rows created
in the same millisecond. Column names follow the Go original where it has them.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Integer, MetaData, Table, Text

from .migrations import Migration

metadata = MetaData()

sessions = Table(
    "sessions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("parent_session_id", Text),
    Column("title", Text, nullable=False),
    Column("message_count", Integer, nullable=False, default=0),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("total_prompt_tokens", Integer, nullable=False, default=0),
    Column("total_completion_tokens", Integer, nullable=False, default=0),
    Column("cost", Float, nullable=False, default=0.0),
    Column("summary_message_id", Text),
    Column("model", Text),
    Column("created_at", Integer, nullable=False),
    Column("updated_at", Integer, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("ended_at", Integer),  # when the session last ended (None: never); see SessionRepository.end
)

messages = Table(
    "messages",
    metadata,
    Column("id", Text, primary_key=True),
    Column("session_id", Text, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("role", Text, nullable=False),
    Column("parts", Text, nullable=False, default="[]"),
    Column("model", Text),
    Column("created_at", Integer, nullable=False),
    Column("updated_at", Integer, nullable=False),
    Column("finished_at", Integer),
    Column("seq", Integer, nullable=False),
)

files = Table(
    "files",
    metadata,
    Column("id", Text, primary_key=True),
    Column("session_id", Text, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("path", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("created_at", Integer, nullable=False),
    Column("updated_at", Integer, nullable=False),
    Column("seq", Integer, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("path", Text, nullable=False, unique=True),
    Column("status", Text, nullable=False, default="stopped"),
    Column("initialized", Integer, nullable=False, default=0),
    Column("last_opened", Integer),
    Column("created_at", Integer, nullable=False),
    Column("updated_at", Integer, nullable=False),
)

applied_writes = Table(
    "applied_writes",
    metadata,
    Column("instance_id", Text, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("method", Text, nullable=False),
    Column("ok", Integer, nullable=False),
    Column("result", Text),
    Column("created_at", Integer, nullable=False),
)

permission_grants = Table(
    "permission_grants",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tool_name", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("pattern", Text, nullable=False),
    Column("created_at", Integer, nullable=False),
)

session_goals = Table(
    "session_goals",
    metadata,
    Column("id", Text, primary_key=True),
    Column("session_id", Text, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("objective", Text, nullable=False),
    Column("status", Text, nullable=False, default="running"),
    Column("iteration", Integer, nullable=False, default=0),
    Column("max_iterations", Integer, nullable=False, default=20),
    Column("max_duration_seconds", Integer, nullable=False, default=3600),
    Column("started_at", Integer, nullable=False),
    Column("completed_at", Integer),
    Column("last_progress", Text),
    Column("next_step", Text),
    Column("blocked_reason", Text),
    Column("response", Text),
    Column("stall_count", Integer, nullable=False, default=0),
    Column("created_at", Integer, nullable=False),
    Column("updated_at", Integer, nullable=False),
)

session_state = Table(
    "session_state",
    metadata,
    Column("session_id", Text, ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
    Column("key", Text, primary_key=True),  # "todos", "plan", "checkpoints"
    Column("value", Text, nullable=False),  # JSON
    Column("updated_at", Integer, nullable=False),
)

CORE_MIGRATIONS = [
    Migration(
        1,
        "initial",
        [
            """CREATE TABLE sessions (
                id TEXT PRIMARY KEY,
                parent_session_id TEXT,
                title TEXT NOT NULL,
                message_count INTEGER NOT NULL DEFAULT 0 CHECK (message_count >= 0),
                prompt_tokens INTEGER NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
                completion_tokens INTEGER NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
                total_prompt_tokens INTEGER NOT NULL DEFAULT 0,
                total_completion_tokens INTEGER NOT NULL DEFAULT 0,
                cost REAL NOT NULL DEFAULT 0 CHECK (cost >= 0),
                summary_message_id TEXT,
                model TEXT,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                seq INTEGER NOT NULL
            )""",
            "CREATE INDEX idx_sessions_order ON sessions (created_at, seq)",
            """CREATE TABLE messages (
                id TEXT PRIMARY KEY,
                session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                role TEXT NOT NULL,
                parts TEXT NOT NULL DEFAULT '[]',
                model TEXT,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                finished_at INTEGER,
                seq INTEGER NOT NULL
            )""",
            "CREATE INDEX idx_messages_session_id ON messages (session_id, seq)",
            """CREATE TABLE files (
                id TEXT PRIMARY KEY,
                session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                path TEXT NOT NULL,
                content TEXT NOT NULL,
                version TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                seq INTEGER NOT NULL,
                UNIQUE (path, session_id, version)
            )""",
            "CREATE INDEX idx_files_session_id ON files (session_id)",
            "CREATE INDEX idx_files_path ON files (path)",
            """CREATE TABLE projects (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                path TEXT NOT NULL UNIQUE,
                status TEXT NOT NULL DEFAULT 'stopped',
                initialized INTEGER NOT NULL DEFAULT 0,
                last_opened INTEGER,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            )""",
            """CREATE TABLE applied_writes (
                instance_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                method TEXT NOT NULL,
                ok INTEGER NOT NULL,
                result TEXT,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (instance_id, seq)
            )""",
        ],
    ),
    Migration(
        2,
        "permissions_and_goals",
        [
            """CREATE TABLE permission_grants (
                id TEXT PRIMARY KEY,
                tool_name TEXT NOT NULL,
                action TEXT NOT NULL,
                pattern TEXT NOT NULL,
                created_at INTEGER NOT NULL
            )""",
            """CREATE TABLE session_goals (
                id TEXT PRIMARY KEY,
                session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                objective TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'running',
                iteration INTEGER NOT NULL DEFAULT 0,
                max_iterations INTEGER NOT NULL DEFAULT 20,
                max_duration_seconds INTEGER NOT NULL DEFAULT 3600,
                started_at INTEGER NOT NULL,
                completed_at INTEGER,
                last_progress TEXT,
                next_step TEXT,
                blocked_reason TEXT,
                response TEXT,
                stall_count INTEGER NOT NULL DEFAULT 0,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            )""",
            "CREATE INDEX idx_session_goals_session ON session_goals (session_id)",
        ],
    ),
    Migration(
        3,
        "seq_indexes",
        [
            "CREATE INDEX idx_sessions_seq ON sessions (seq)",
            "CREATE INDEX idx_messages_seq ON messages (seq)",
            "CREATE INDEX idx_files_seq ON files (seq)",
        ],
    ),
    Migration(
        4,
        "applied_writes_without_rowid",
        # keyed by (instance_id, seq) alone: one b-tree instead of a rowid table plus its key
        # index, so recording a write's key changes one page per commit, not two
        [
            """CREATE TABLE applied_writes_keyed (
                instance_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                method TEXT NOT NULL,
                ok INTEGER NOT NULL,
                result TEXT,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (instance_id, seq)
            ) WITHOUT ROWID""",
            "INSERT INTO applied_writes_keyed SELECT instance_id, seq, method, ok, result, created_at FROM applied_writes",
            "DROP TABLE applied_writes",
            "ALTER TABLE applied_writes_keyed RENAME TO applied_writes",
        ],
    ),
    Migration(
        5,
        "sessions_without_unused_indexes",
        # no query orders sessions by (created_at, seq); the next seq is counted by the writer
        # connection (one max(seq) per primary, a scan of this small-row table), so neither index
        # pays for the page every session insert writes into it
        [
            "DROP INDEX idx_sessions_order",
            "DROP INDEX idx_sessions_seq",
        ],
    ),
    Migration(
        6,
        "sessions_ended_at",
        # session end is recorded, so that the primary hears of sessions ended on any instance
        # and the idle sweep ends each stretch of activity once
        ["ALTER TABLE sessions ADD COLUMN ended_at INTEGER"],
    ),
    Migration(
        7,
        "session_state",
        # small per-session documents (the todo list, the plan of plan mode, the turn checkpoints),
        # one row per (session, key), written whole
        [
            """CREATE TABLE session_state (
                session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                updated_at INTEGER NOT NULL,
                PRIMARY KEY (session_id, key)
            )""",
        ],
    ),
]
