"""File history: every version of a file the agent wrote, and first-vs-latest diffs."""

from __future__ import annotations

import difflib
from typing import Any


class HistoryService:
    def __init__(self, app: Any) -> None:
        self.app = app

    def record_change(self, session_id: str, path: str, before: str | None, after: str) -> None:
        self.app.store.files.record_change(session_id=session_id, path=path, before=before, after=after)

    def changed_files(self, session_id: str | None = None) -> list[dict]:
        return self.app.store.files.changed_paths(session_id=session_id)

    def versions(self, session_id: str, path: str) -> list[dict]:
        return self.app.store.files.versions(session_id=session_id, path=path)

    def diff(self, session_id: str, path: str, shown: str | None = None) -> str:
        """Unified diff of the first recorded version (usually ``initial``) against the latest.

        ``shown`` is the path written in the diff headers (default ``path``); a last line without a
        newline gets git's ``\\ No newline at end of file`` marker.
        """
        versions = self.versions(session_id, path)
        if not versions:
            return ""
        shown = shown or path
        first, latest = versions[0], versions[-1]
        lines = difflib.unified_diff(
            (first.get("content") or "").splitlines(keepends=True),
            (latest.get("content") or "").splitlines(keepends=True),
            fromfile=f"a/{shown} ({first['version']})",
            tofile=f"b/{shown} ({latest['version']})",
        )
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
