"""The tool interface every agent tool implements (built-in and plugin tools alike)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # asyncio is only named in annotations; importing it costs start-up time
    import asyncio


class ToolError(Exception):
    """A soft failure: its message goes back to the model as an error result."""


class PermissionDenied(Exception):
    """Raised when the user (or the non-interactive policy) refuses a tool call."""


@dataclass(frozen=True)
class PermissionRequest:
    """What a tool asks permission for before it acts."""

    tool_name: str
    action: str  # "execute", "write", "create", "update", "delete", "fetch"
    description: str
    path: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ToolResult:
    content: str
    is_error: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


class FileReadTracker:
    """Remembers when each file was last read or written by the agent (read-before-write guard)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def record(self, path: Path) -> None:
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return
        with self._lock:
            self._seen[str(path.resolve())] = mtime

    def check_unchanged(self, path: Path) -> str | None:
        """None when the file may be written; otherwise the reason it may not."""
        key = str(path.resolve())
        with self._lock:
            seen = self._seen.get(key)
        if seen is None:
            return f"You must read {path} with the view tool before changing it"
        try:
            current = path.stat().st_mtime
        except OSError:
            return None
        if current > seen:
            return f"{path} was modified since it was last read; view it again before changing it"
        return None


class HistoryRecorder(Protocol):
    def record_change(self, session_id: str, path: str, before: str | None, after: str) -> None:
        """Called after a tool changed a file: `before` is None when the file did not exist."""


class PermissionAsker(Protocol):
    async def request(self, session_id: str, request: PermissionRequest) -> bool: ...


@dataclass
class ToolContext:
    """Everything a tool may use while running one call."""

    workdir: Path
    session_id: str = ""
    message_id: str = ""
    call_id: str = ""
    files: FileReadTracker = field(default_factory=FileReadTracker)
    history: HistoryRecorder | None = None
    permissions: PermissionAsker | None = None
    allow_outside_workdir: bool = False
    cancel_event: asyncio.Event | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _root: tuple[Path, Path] | None = field(default=None, init=False, repr=False, compare=False)

    def root(self) -> Path:
        """The working directory, resolved once (tools call this for every path they show or check;
        recomputed only when `workdir` is reassigned)."""
        cached = self._root
        if cached is None or cached[0] is not self.workdir:
            cached = self._root = (self.workdir, self.workdir.resolve())
        return cached[1]

    async def ask(self, request: PermissionRequest) -> None:
        """Ask permission; raise PermissionDenied when refused. No asker means allowed (tests, trusted use)."""
        if self.permissions is None:
            return
        if not await self.permissions.request(self.session_id, request):
            first_line = request.description.splitlines()[0] if request.description else ""
            raise PermissionDenied(
                f"Permission denied: {request.tool_name} ({request.action}) {first_line}".rstrip()
            )

    def resolve_path(self, raw: str) -> Path:
        """Resolve a model-given path against the workdir, refusing escapes unless permitted."""
        if not raw:
            raise ToolError("path is required")
        workdir = self.root()
        candidate = Path(raw).expanduser()
        if not candidate.is_absolute():
            text = str(candidate)
            # the model sometimes repeats the workdir without its leading slash
            stripped = str(workdir).lstrip("/")
            if text == stripped or text.startswith(stripped + "/"):
                candidate = Path("/" + text)
            else:
                candidate = workdir / candidate
        resolved = candidate.resolve()
        if not self.allow_outside_workdir and resolved != workdir and workdir not in resolved.parents:
            raise ToolError(f"Path {raw} is outside the working directory {workdir}")
        return resolved


async def wait_unless_cancelled(task: asyncio.Future, ctx: ToolContext, timeout: float | None = None) -> str:
    """Wait for `task` until it is done, `ctx.cancel_event` is set or `timeout` seconds have passed.

    Returns "" when the task is done, else "cancelled" or "timeout"; stopping the task is left to the
    caller (also when the wait itself is cancelled).
    """
    import asyncio

    cancel = asyncio.ensure_future(ctx.cancel_event.wait()) if ctx.cancel_event else None
    try:
        done, _ = await asyncio.wait(
            {task} | ({cancel} if cancel else set()), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        if cancel is not None:
            cancel.cancel()
    if task in done:
        return ""
    return "cancelled" if cancel is not None and cancel in done else "timeout"


@runtime_checkable
class Tool(Protocol):
    """An agent tool. `parameters` is a JSON schema object: {"type": "object", "properties": ..., "required": [...]}.

    Permissions are the core's: a tool that never changes anything sets ``read_only = True`` and
    is never asked about; for any other tool the core asks before ``run`` (see
    :func:`permission_requests`). Optional members:

    - ``read_only: bool`` (absent: False);
    - ``async def permission(self, args, ctx)``: the ``PermissionRequest`` the core asks with (a
      list of them, or None when these arguments need no permission);
    - ``asks_permission = True``: the tool itself calls ``ctx.ask()`` before it changes anything,
      because what it must show is known only mid-way (the built-in write, edit, patch and bash).
    """

    name: str
    description: str
    parameters: dict[str, Any]

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult: ...


async def permission_requests(tool: Any, args: dict[str, Any], ctx: ToolContext) -> list[PermissionRequest]:
    """What the core asks before *tool* runs with *args*: nothing for a read-only tool, the tool's
    own description when it gives one, else a request naming the tool and its arguments."""
    if getattr(tool, "read_only", False) or getattr(tool, "asks_permission", False):
        return []
    describe = getattr(tool, "permission", None)
    if describe is not None:
        described = await describe(args, ctx)
        if described is None:
            return []
        return list(described) if isinstance(described, list | tuple) else [described]
    return [
        PermissionRequest(
            tool_name=tool.name,
            action="execute",
            description=f"{tool.name} {_arguments_summary(args)}".rstrip(),
            params=dict(args),
        )
    ]


def _arguments_summary(args: dict[str, Any], limit: int = 200) -> str:
    import json

    try:
        text = json.dumps(args, ensure_ascii=False, default=str, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(args)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tool_schema(tool: Tool) -> dict[str, Any]:
    """The provider-neutral description of a tool sent to the model."""
    return {"name": tool.name, "description": tool.description, "parameters": tool.parameters}
