"""File history: every version of a file the agent wrote, and first-vs-latest diffs."""

from __future__ import annotations

from typing import Any

from ..textdiff import unified_diff


def diff_versions(versions: list[dict], shown: str) -> str:
    """The first of the recorded ``versions`` of a file against the latest ("" for none); ``shown``
    is the path written in the diff headers."""
    if not versions:
        return ""
    first, latest = versions[0], versions[-1]
    return unified_diff(
        first.get("content") or "",
        latest.get("content") or "",
        f"a/{shown} ({first['version']})",
        f"b/{shown} ({latest['version']})",
    )


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
        return diff_versions(self.versions(session_id, path), shown or path)
