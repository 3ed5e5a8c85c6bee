"""Paging of large tool results.

The agent loop passes every tool result through `wrap_large_result(result, ctx, pager, tool_name)` (via
App.page_result). A result longer than the pager's threshold is stored in memory (per session, bounded
LRU) and replaced by its first page plus a note telling the model how to read the rest with the
`result_page` tool. Results of the NOT_PAGED tools are never paged.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from pando_core.agent.tools.base import ToolContext, ToolError, ToolResult
from pando_core.agent.tools.write import int_arg, str_arg

DEFAULT_PAGE_CHARS = 30_000
MAX_ENTRIES_PER_SESSION = 50
MAX_CHARS_PER_SESSION = 50 * 1024 * 1024
MAX_SESSIONS = 64
# results of these tools are never paged (they are small, or paging them would be confusing)
NOT_PAGED = frozenset({"edit", "write", "patch", "result_page"})

RESULT_PAGE_DESCRIPTION = """Read another page of a large tool result.

When a tool's output is too long it is cut into pages of 30000 characters: you receive page 1 and a
note such as "Output is 84211 chars; showing 1-30000. Call result_page with id=r1a2b3c4 page=2 for more".
Call this tool with that id and the page number (2, 3, ...) to continue reading. Stored results belong
to the current session and are kept in memory for a limited time; if an id is no longer known, run the
original tool again (preferably with a narrower query)."""


@dataclass
class StoredResult:
    id: str
    content: str
    tool_name: str
    page_chars: int

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.content) // self.page_chars))

    def bounds(self, page: int) -> tuple[int, int]:
        """(start, end) character offsets of `page` (1-based) in the content."""
        start = (page - 1) * self.page_chars
        return start, min(start + self.page_chars, len(self.content))


class ResultPager:
    """Per-session in-memory store of large results (LRU, bounded by entries and characters)."""

    def __init__(
        self,
        threshold: int = DEFAULT_PAGE_CHARS,
        page_chars: int | None = None,
        max_entries: int = MAX_ENTRIES_PER_SESSION,
        max_chars: int = MAX_CHARS_PER_SESSION,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self.threshold = threshold
        self.page_chars = page_chars or threshold
        self.max_entries = max_entries
        self.max_chars = max_chars
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, OrderedDict[str, StoredResult]] = OrderedDict()
        self._lock = threading.Lock()
        self.evictions = 0

    def store(self, session_id: str, content: str, tool_name: str = "") -> StoredResult:
        entry = StoredResult(f"r{secrets.token_hex(4)}", content, tool_name, self.page_chars)
        with self._lock:
            entries = self._sessions.get(session_id)
            if entries is None:
                entries = self._sessions[session_id] = OrderedDict()
                while len(self._sessions) > self.max_sessions:
                    _sid, dropped = self._sessions.popitem(last=False)
                    self.evictions += len(dropped)
            else:
                self._sessions.move_to_end(session_id)
            entries[entry.id] = entry
            total = sum(len(item.content) for item in entries.values())
            while len(entries) > 1 and (len(entries) > self.max_entries or total > self.max_chars):
                _rid, dropped_entry = entries.popitem(last=False)
                total -= len(dropped_entry.content)
                self.evictions += 1
        return entry

    def get(self, session_id: str, result_id: str) -> StoredResult | None:
        with self._lock:
            entries = self._sessions.get(session_id)
            if entries is None or result_id not in entries:
                return None
            entries.move_to_end(result_id)
            self._sessions.move_to_end(session_id)
            return entries[result_id]

    def clear(self, session_id: str | None = None) -> None:
        with self._lock:
            if session_id is None:
                self._sessions.clear()
            else:
                self._sessions.pop(session_id, None)

    def stats(self, session_id: str) -> dict[str, int]:
        with self._lock:
            entries = self._sessions.get(session_id) or OrderedDict()
            return {
                "entries": len(entries),
                "chars": sum(len(item.content) for item in entries.values()),
                "evictions": self.evictions,
            }

    def page(self, session_id: str, result_id: str, page: int) -> tuple[str, StoredResult]:
        entry = self.get(session_id, result_id)
        if entry is None:
            raise ToolError(
                f"No stored result with id {result_id} in this session (it may have expired); "
                "run the original tool again"
            )
        if page < 1 or page > entry.pages:
            raise ToolError(f"page {page} is out of range: result {result_id} has {entry.pages} page(s)")
        start, end = entry.bounds(page)
        return entry.content[start:end], entry

    def note(self, entry: StoredResult, page: int) -> str:
        start, end = entry.bounds(page)
        text = (
            f"Output is {len(entry.content)} chars; showing {start + 1}-{end} (page {page} of {entry.pages})."
        )
        if page < entry.pages:
            text += f" Call result_page with id={entry.id} page={page + 1} for more."
        else:
            text += " This is the last page."
        return f"[{text}]"


DEFAULT_PAGER = ResultPager()


def _context_pager(ctx: ToolContext) -> ResultPager:
    """The calling app's pager (ctx.extra["app"].pager), else the process-wide DEFAULT_PAGER."""
    app_pager = getattr(ctx.extra.get("app"), "pager", None)
    return app_pager if isinstance(app_pager, ResultPager) else DEFAULT_PAGER


def wrap_large_result(
    result: ToolResult, ctx: ToolContext, pager: ResultPager | None = None, tool_name: str | None = None
) -> ToolResult:
    """Return `result` unchanged when small (or an error); else its first page plus a paging note.

    `pager` defaults to the calling app's pager (ctx.extra["app"]), else DEFAULT_PAGER. `tool_name` is
    the tool that produced the result: results of NOT_PAGED tools are never paged.
    """
    if pager is None:
        pager = _context_pager(ctx)
    if result.is_error or len(result.content) <= pager.threshold:
        return result
    if tool_name in NOT_PAGED or "result_id" in result.metadata:
        return result  # exempt tools, and pages that result_page already returned
    entry = pager.store(ctx.session_id, result.content, tool_name or "")
    first, _ = pager.page(ctx.session_id, entry.id, 1)
    metadata = dict(result.metadata)
    metadata.update({"result_id": entry.id, "total_chars": len(result.content), "pages": entry.pages})
    return replace(result, content=f"{first}\n\n{pager.note(entry, 1)}", metadata=metadata)


class ResultPageTool:
    name = "result_page"
    read_only = True
    description = RESULT_PAGE_DESCRIPTION
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "The result id from the paging note, e.g. r1a2b3c4"},
            "page": {"type": "integer", "description": "Page number to read, starting at 1 (default 2)"},
        },
        "required": ["id"],
    }

    def __init__(self, pager: ResultPager | None = None) -> None:
        """Pages are read from `pager`; without one, from the calling app's pager (else DEFAULT_PAGER)."""
        self.pager = pager

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        result_id = str_arg(args, "id", required=True).strip()
        if not result_id:
            raise ToolError("id is required")
        page = int_arg(args, "page", 2)
        pager = self.pager or _context_pager(ctx)
        text, entry = pager.page(ctx.session_id, result_id, page)
        return ToolResult(
            content=f"{text}\n\n{pager.note(entry, page)}",
            metadata={
                "result_id": entry.id,
                "page": page,
                "pages": entry.pages,
                "total_chars": len(entry.content),
            },
        )
