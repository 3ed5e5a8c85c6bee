"""Per-turn checkpoints of the working tree, and rewinding a session to one of its turns.

A turn that may change files gets two working-tree snapshots (the snapshot service: a private git
index in a git work tree, so the user's index, HEAD and stash are never touched): ``before``,
taken lazily just before the turn's first tool call that may change files, and ``after``, when the
turn ends. The pair is recorded with the session (``session_state`` key ``checkpoints``, through
the write path) next to the id of the turn's user message; a turn that changed nothing leaves no
checkpoint.

Rewinding to turn N puts things back as they were just before turn N:

- files: every path the agent changed in turns N and later (``before_k`` -> ``after_k``) gets the
  content it had before the first of those turns that changed it (files the agent created are
  deleted). A path also changed *outside* the agent since (``after_k`` -> ``before_k+1``, or the
  last ``after`` -> now) is a conflict: nothing is written unless ``force``; other files the user
  changed are never touched;
- conversation: turn N's user message and everything after it are deleted (one write, seen by
  every instance).

Checkpoints are pruned when a turn records one: a working directory keeps the newest ``[snapshots]
keep_checkpoints`` (50, every session counted) and none older than ``checkpoint_max_age_days``
(30). A pruned checkpoint's record stays, marked, so a rewind of files that far back is refused.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from ..clock import now_ms
from ..errors import NotFoundError, PandoError, UsageError

log = logging.getLogger("pando.checkpoints")

STATE_KEY = "checkpoints"
BEFORE_LABEL = "checkpoint before"


class RewindConflict(PandoError):
    """Files changed outside the agent since the checkpoint: not overwritten without --force."""

    kind = "conflict"

    def __init__(self, message: str, paths: list[str]) -> None:
        super().__init__(message)
        self.paths = paths


@dataclass
class Turn:
    number: int  # 1-based, in the order of the session's user messages
    message_id: str
    prompt: str
    checkpoint: dict[str, Any] | None = None  # {"message_id", "before", "after"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "turn": self.number,
            "message_id": self.message_id,
            "prompt": self.prompt,
            "changed_files": bool(self.checkpoint),
            "checkpoint_pruned": bool(self.checkpoint and self.checkpoint.get("pruned")),
        }


@dataclass
class RewindReport:
    session_id: str
    turn: int
    files: bool
    chat: bool
    restored: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # changed outside the agent (overwritten: force)
    skipped: dict[str, str] = field(default_factory=dict)
    messages_deleted: int = 0
    prompt: str = ""  # the user message of the rewound turn (the interactive session offers it again)
    safety_snapshot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def changes_files(tool: Any, arguments: dict[str, Any], workdir: Any) -> bool:
    """Whether a call may change files: any tool not read-only, except fetch and read-only bash."""
    if getattr(tool, "read_only", False):
        return False
    name = getattr(tool, "name", "")
    if name == "fetch":
        return False
    if name == "bash":
        from ..agent.tools.shell_safety import is_read_only

        command = arguments.get("command")
        return not (isinstance(command, str) and is_read_only(command, workdir))
    return True


class CheckpointService:
    """Checkpoints of the sessions run by one App, and rewinds."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._open: dict[str, dict[str, Any]] = {}  # session id -> the running turn's checkpoint
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        snapshots = self.app.config.section("snapshots")
        return self.app.snapshots is not None and bool(snapshots.get("checkpoints", True))

    # -- recording (called by the agent loop) ------------------------------------------------------

    def turn_started(self, session_id: str, message_id: str) -> None:
        with self._lock:
            self._open[session_id] = {"message_id": message_id, "before": None, "after": None}

    def wants_before(self, session_id: str) -> bool:
        """Cheap: whether :meth:`before_change` has a snapshot to take (the loop skips the thread)."""
        entry = self._open.get(session_id)
        return entry is not None and entry["before"] is None

    def wants_after(self, session_id: str) -> bool:
        """Cheap: whether :meth:`turn_finished` has a snapshot to take; else the turn is forgotten."""
        entry = self._open.get(session_id)
        if entry is not None and entry["before"]:
            return True
        with self._lock:
            self._open.pop(session_id, None)
        return False

    def before_change(self, session_id: str) -> None:
        """Before a tool call that may change files: the turn's ``before`` snapshot, once."""
        with self._lock:
            entry = self._open.get(session_id)
        if entry is None or entry["before"] is not None or not self.enabled:
            return
        try:
            snap = self.app.snapshots.take(BEFORE_LABEL, session_id=session_id, stats=False)
        except Exception as exc:  # noqa: BLE001 - a checkpoint failure never stops the turn
            log.warning("checkpoint failed: %s", exc)
            entry["before"] = ""
            return
        entry["before"] = snap.id
        entry["before_tree"] = snap.tree

    def turn_finished(self, session_id: str) -> None:
        """The turn ended: its ``after`` snapshot, and the pair recorded (or dropped when nothing changed)."""
        with self._lock:
            entry = self._open.pop(session_id, None)
        if not entry or not entry["before"]:
            return
        snapshots = self.app.snapshots
        try:
            after = snapshots.take("checkpoint after", session_id=session_id, stats=False)
            unchanged = (
                after.tree == entry.get("before_tree")
                if after.kind == "git"
                else not snapshots.changed_files(entry["before"], after.id)
            )
            if unchanged:
                snapshots.delete(after.id)
                snapshots.delete(entry["before"])
                return
            entry["after"] = after.id
            record = {"message_id": entry["message_id"], "before": entry["before"], "after": after.id}
            self._save(session_id, [*self.checkpoints(session_id), record])
        except Exception as exc:  # noqa: BLE001
            log.warning("checkpoint of the turn's end failed: %s", exc)
            return
        try:
            self.prune()
        except Exception as exc:  # noqa: BLE001 - pruning is housekeeping: it never fails a turn
            log.warning("pruning old checkpoints failed: %s", exc)

    # -- pruning -----------------------------------------------------------------------------------

    def prune(self) -> int:
        """Drop the checkpoints of the working directory (every session's) beyond the newest
        ``[snapshots] keep_checkpoints`` and those older than ``checkpoint_max_age_days``; returns
        how many. A session's record of a pruned checkpoint stays, marked ``pruned``, so that a
        rewind that far back says its files cannot be put back instead of restoring half of them."""
        snapshots = self.app.snapshots
        if snapshots is None:
            return 0
        config = self.app.config.section("snapshots")
        keep = int(config.get("keep_checkpoints") or 0)
        max_age_days = float(config.get("checkpoint_max_age_days") or 0)
        if keep <= 0 and max_age_days <= 0:
            return 0
        with self._lock:
            running = {entry["before"] for entry in self._open.values() if entry.get("before")}
        befores = [s for s in snapshots.list() if s.label == BEFORE_LABEL and s.id not in running]  # newest first
        doomed = {s.id: s for s in befores[keep:]} if keep > 0 else {}
        if max_age_days > 0:
            cutoff = now_ms() - int(max_age_days * 86_400_000)
            doomed.update({s.id: s for s in befores if s.created_at < cutoff})
        if not doomed:
            return 0
        ids = set(doomed)
        for session_id in {s.session_id for s in doomed.values() if s.session_id}:
            records = self.checkpoints(session_id)
            kept = []
            for record in records:
                if record.get("before") in doomed:
                    ids.add(record.get("after") or "")
                    record = {"message_id": record["message_id"], "pruned": True}
                kept.append(record)
            if kept != records:
                self._save(session_id, kept)
        snapshots.delete_many(ids)
        return len(doomed)

    # -- reading -----------------------------------------------------------------------------------

    def checkpoints(self, session_id: str) -> list[dict[str, Any]]:
        value = self.app.store.session_state.get(session_id=session_id, key=STATE_KEY)
        return list(value) if isinstance(value, list) else []

    def _save(self, session_id: str, checkpoints: list[dict[str, Any]]) -> None:
        self.app.store.session_state.put(session_id=session_id, key=STATE_KEY, value=checkpoints)

    def turns(self, session_id: str) -> list[Turn]:
        from .messages import text_of

        by_message = {c["message_id"]: c for c in self.checkpoints(session_id)}
        users = [m for m in self.app.messages.list(session_id) if m["role"] == "user"]
        return [
            Turn(n, m["id"], text_of(m), by_message.get(m["id"])) for n, m in enumerate(users, start=1)
        ]

    # -- rewinding ---------------------------------------------------------------------------------

    def rewind(
        self,
        session_id: str,
        turn: int | None = None,
        *,
        files: bool = True,
        chat: bool = True,
        force: bool = False,
        dry_run: bool = False,
    ) -> RewindReport:
        """Back to just before ``turn`` (default: the last turn). Raises RewindConflict when a file
        to restore was changed outside the agent and ``force`` is not given."""
        turns = self.turns(session_id)
        if not turns:
            raise UsageError(f"session {session_id} has no turns to rewind")
        number = turns[-1].number if turn is None else turn
        if not 1 <= number <= len(turns):
            raise UsageError(f"turn {number} does not exist: session {session_id} has turns 1..{len(turns)}")
        target = turns[number - 1]
        report = RewindReport(session_id, number, files, chat, prompt=target.prompt)
        pruned = [t.number for t in turns[number - 1 :] if t.checkpoint and t.checkpoint.get("pruned")]
        if files and pruned:
            later_ones = any(t.checkpoint and not t.checkpoint.get("pruned") for t in turns[pruned[-1] :])
            where = (
                f"files can be rewound only to a turn after turn {pruned[-1]}"
                if later_ones
                else f"the files of turn {pruned[-1]} and before cannot be put back"
            )
            raise UsageError(
                f"the checkpoint of turn {pruned[-1]} was pruned ([snapshots] keep_checkpoints, "
                f"checkpoint_max_age_days): {where}; use --chat-only for the conversation alone"
            )
        later = [t.checkpoint for t in turns[number - 1 :] if t.checkpoint]
        if files and later:
            self._rewind_files(session_id, later, report, force=force, dry_run=dry_run)
        if dry_run:
            return report
        kept_ids = {t.message_id for t in turns[: number - 1]}
        if files or chat:  # the rewound turns' checkpoints are spent either way
            self._save(session_id, [c for c in self.checkpoints(session_id) if c["message_id"] in kept_ids])
        if chat:
            deleted = self.app.messages.delete_from(session_id, target.message_id)
            report.messages_deleted = len(deleted)
        return report

    def _rewind_files(
        self, session_id: str, later: list[dict[str, Any]], report: RewindReport, *, force: bool, dry_run: bool
    ) -> None:
        snapshots = self.app.snapshots
        if snapshots is None:
            raise UsageError("snapshots are off ([snapshots] enabled = false): files cannot be rewound")
        source: dict[str, str] = {}  # path -> the checkpoint whose "before" holds its content
        outside: set[str] = set()
        for index, checkpoint in enumerate(later):
            following = later[index + 1]["before"] if index + 1 < len(later) else None
            after = checkpoint.get("after") or following
            for _status, path in snapshots.changed_files(checkpoint["before"], after):
                source.setdefault(path, checkpoint["before"])
            if checkpoint.get("after"):
                outside.update(path for _status, path in snapshots.changed_files(checkpoint["after"], following))
        report.conflicts = sorted(set(source) & outside)
        if report.conflicts and not force:
            shown = ", ".join(report.conflicts[:8]) + (", ..." if len(report.conflicts) > 8 else "")
            raise RewindConflict(
                f"changed outside the agent since the checkpoint, not overwritten (use --force): {shown}",
                report.conflicts,
            )
        groups: dict[str, list[str]] = {}
        for path, snap_id in source.items():
            groups.setdefault(snap_id, []).append(path)
        for snap_id, paths in groups.items():
            done = snapshots.restore(
                snap_id,
                paths=sorted(paths),
                delete_added=True,
                dry_run=dry_run,
                safety_snapshot=not dry_run and report.safety_snapshot is None,
            )
            report.safety_snapshot = report.safety_snapshot or done.safety_snapshot
            report.restored += done.restored
            report.deleted += done.deleted
            report.skipped.update(done.reasons)
        report.restored.sort()
        report.deleted.sort()


def find_session(app: Any, id_or_prefix: str) -> dict[str, Any]:
    try:
        return app.sessions.find(id_or_prefix)
    except NotFoundError:
        raise UsageError(f"no session {id_or_prefix!r} (see `pando sessions list`)") from None
