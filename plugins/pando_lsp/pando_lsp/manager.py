"""``app.lsp``: the language servers of one process, on a background asyncio loop thread.

A server starts on the first file of its language, is restarted once if it dies, and every wait is
bounded: a missing, crashing or silent server becomes a one-line notice, never an exception.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .client import LspClient, LspError
from .config import ServerSpec, language_id
from .status import StatusFile

log = logging.getLogger("pando.lsp")

ERROR, WARNING = 1, 2
SHOWN = 10  # diagnostics listed per file
PROJECT_FILES = 20  # files listed in a project's report, worst first
PER_FILE = 5  # diagnostics listed per file in a project's report


@dataclass
class Report:
    """What a check of one file found (``notice`` when the server could not answer)."""

    path: Path
    server: str
    diagnostics: list[dict] = field(default_factory=list)
    project_errors: int = 0
    project_warnings: int = 0
    notice: str | None = None
    answered: bool = False


class Server:
    """One configured server: its client (once started) and what it told us."""

    def __init__(self, spec: ServerSpec, workdir: Path) -> None:
        self.spec = spec
        self.workdir = workdir
        self.client: LspClient | None = None
        self.starting: asyncio.Task | None = None
        self.restarts = 0
        self.failure: str | None = None
        self.last_error: str | None = None  # the latest failure or crash, kept across the restart
        self.start_seconds: float | None = None
        self.versions: dict[str, int] = {}
        self.diagnostics: dict[str, list[dict]] = {}
        self.answered_text: dict[str, str] = {}  # uri -> the text the server's current diagnostics are for
        self.waiters: dict[str, list[tuple[int, asyncio.Future]]] = {}
        self.watcher: asyncio.Task | None = None  # awaits an exit nobody asked for

    def root(self, path: Path) -> Path:
        """The nearest ancestor (inside the working directory) holding a root marker, else the workdir."""
        for parent in path.parents:
            if parent != self.workdir and self.workdir not in parent.parents:
                break
            if any((parent / marker).exists() for marker in self.spec.root_markers):
                return parent
        return self.workdir

    def state(self) -> str:
        if self.failure:
            return "failed"
        if self.client is None:
            return "starting" if self.starting else "not started"
        if self.starting is not None and not self.starting.done():
            return "starting"
        return "running" if self.client.alive else "exited"

    def published(self, uri: str, version: int | None, diagnostics: list[dict]) -> None:
        self.diagnostics[uri] = diagnostics
        keep = []
        for wanted, future in self.waiters.pop(uri, []):
            if future.done():
                continue
            if version is None or version >= wanted:
                future.set_result(True)
            else:
                keep.append((wanted, future))
        if keep:
            self.waiters[uri] = keep


class LspManager:
    def __init__(self, workdir: Path, specs: list[ServerSpec], wait_ms: int, status_file: StatusFile | None = None) -> None:
        self.workdir = workdir.resolve()
        self.servers = [Server(spec, self.workdir) for spec in specs]
        self.wait_ms = wait_ms
        self.status_file = status_file  # for `pando lsp status` in another process (status.py)
        self.baselines: dict[Path, list[dict] | None] = {}  # file -> its diagnostics before a running edit
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- the loop thread -----------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="pando-lsp", daemon=True)
                self._thread.start()
            return self._loop

    def submit(self, coro) -> Any:  # noqa: ANN001
        """Run ``coro`` on the loop thread; a concurrent future."""
        return asyncio.run_coroutine_threadsafe(coro, self._ensure_loop())

    def run(self, coro, timeout: float) -> Any:  # noqa: ANN001
        return self.submit(coro).result(timeout)

    # -- servers -------------------------------------------------------------------------------

    def changed(self) -> None:
        """A server's state changed: rewrite this process's status file."""
        if self.status_file is not None and not self._closing:
            self.status_file.write(self.status())

    def _failed(self, server: Server, message: str, write: bool = False) -> None:
        server.last_error = message
        if write:
            self.changed()

    async def _watch(self, server: Server, client: LspClient) -> None:
        """Record a server's exit that nobody asked for (a crash), with what it left on stderr."""
        await client.process.wait()
        if client._stderr_reader is not None:
            await asyncio.wait({client._stderr_reader}, timeout=1.0)
        if not self._closing and server.client is client:
            self._failed(server, f"{server.spec.name} exited ({client.exit_summary()})", write=True)

    def server_for(self, path: Path) -> Server | None:
        return next((server for server in self.servers if server.spec.handles(path)), None)

    async def _start(self, server: Server, path: Path) -> LspClient:
        command = server.spec.resolved_command()
        if command is None:
            server.failure = f"{server.spec.name}: command {server.spec.command!r} not found on PATH"
            self._failed(server, server.failure, write=True)
            raise LspError(server.failure)
        client = LspClient(
            server.spec.name,
            [command, *server.spec.args],
            server.root(path),
            server.spec.initialization_options,
            on_diagnostics=server.published,
        )
        server.client = client
        server.versions.clear()
        began = time.perf_counter()
        try:
            await client.start()
        except (OSError, LspError) as exc:
            await client.shutdown(1.0)
            if client._stderr_reader is not None:
                await asyncio.wait({client._stderr_reader}, timeout=1.0)
            detail = f" ({client.exit_summary()})" if client.process is not None else ""
            message = f"{server.spec.name} failed to start: {exc}{detail}"
            self._failed(server, message)
            raise LspError(message) from exc
        server.start_seconds = time.perf_counter() - began
        server.watcher = asyncio.get_running_loop().create_task(self._watch(server, client))  # kept: not collected
        return client

    async def _client(self, server: Server, path: Path) -> LspClient:
        if server.failure:
            raise LspError(server.failure)
        if server.starting is not None and not server.starting.done():
            return await asyncio.shield(server.starting)
        if server.client is not None and server.client.alive:
            return server.client
        if server.client is not None:  # it died
            if server.restarts >= 1:
                server.failure = f"{server.spec.name} exited again; not restarting it"
                self.changed()
                raise LspError(server.failure)
            server.restarts += 1
            log.warning("lsp %s exited; restarting it once", server.spec.name)
        server.starting = asyncio.get_running_loop().create_task(self._start(server, path))
        # a start whose waiter gave up (wait_ms) may fail later, at shutdown: that is no news
        server.starting.add_done_callback(lambda task: task.cancelled() or task.exception())
        try:
            return await asyncio.shield(server.starting)
        except LspError:
            if server.client is not None and server.restarts >= 1:
                server.failure = f"{server.spec.name} failed again after a restart"
            raise
        finally:
            self.changed()  # the start is over (ok or not): its state is final now

    # -- checks --------------------------------------------------------------------------------

    async def check(self, path: Path, wait_ms: int | None = None) -> Report | None:
        """Tell the file's server the file's current text and wait (bounded) for its diagnostics.
        None: no server handles this file type, or the file is gone."""
        path = path.resolve()
        server = self.server_for(path)
        if server is None or not path.is_file():
            return None
        wait = (self.wait_ms if wait_ms is None else wait_ms) / 1000
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        report = Report(path, server.spec.name)
        try:
            client = await asyncio.wait_for(self._client(server, path), wait)
            await self._sync(server, client, path, report, deadline)
        except TimeoutError:
            report.notice = f"lsp: {server.spec.name} did not answer within {round(wait * 1000)} ms"
        except (LspError, OSError) as exc:
            report.notice = f"lsp: {exc}"
        report.diagnostics = _shown(server.diagnostics.get(path.as_uri(), []))
        report.project_errors, report.project_warnings = self.counts()
        return report

    async def baseline(self, path: Path) -> list[dict] | None:
        """The file's errors and warnings as it is now, before an edit: what the server said about
        this very text if it did, else a check of it (bounded by wait_ms). None: unknown (the
        server did not answer); [] for a file that does not exist yet."""
        path = path.resolve()
        server = self.server_for(path)
        if server is None:
            return None
        if not path.is_file():
            return []
        uri = path.as_uri()
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        if server.answered_text.get(uri) == text:
            return _shown(server.diagnostics.get(uri, []))
        report = await self.check(path)
        return report.diagnostics if report is not None and report.answered else None

    async def _sync(self, server: Server, client: LspClient, path: Path, report: Report, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        text = path.read_text(encoding="utf-8", errors="replace")
        server.answered_text.pop(path.as_uri(), None)
        uri = path.as_uri()
        version = server.versions.get(uri, 0) + 1
        answered = loop.create_future()
        server.waiters.setdefault(uri, []).append((version, answered))
        if uri in server.versions:
            client.did_change(uri, version, text)
        else:
            client.did_open(uri, language_id(path), version, text)
        server.versions[uri] = version
        client.did_save(uri, text)
        if client.pulls:
            server.diagnostics[uri] = await asyncio.wait_for(client.pull(uri), max(deadline - loop.time(), 0))
            report.answered = True
            server.answered_text[uri] = text
            return
        exited = loop.create_task(client.exited.wait())
        try:
            done, _ = await asyncio.wait(
                {answered, exited}, timeout=max(deadline - loop.time(), 0), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            exited.cancel()
        if answered in done:
            report.answered = True
            server.answered_text[uri] = text
        elif exited in done:
            raise LspError(f"{server.spec.name} exited while checking {path.name}")
        else:
            raise TimeoutError

    def counts(self) -> tuple[int, int]:
        errors = warnings = 0
        for server in self.servers:
            for diagnostics in server.diagnostics.values():
                for d in diagnostics:
                    severity = d.get("severity", ERROR)
                    errors += severity == ERROR
                    warnings += severity == WARNING
        return errors, warnings

    def project(self) -> list[dict]:
        """Every file with errors or warnings the servers reported in this process, worst first:
        ``{path, server, errors, warnings, diagnostics}``."""
        from urllib.parse import unquote, urlparse

        files = []
        for server in self.servers:
            for uri, diagnostics in server.diagnostics.items():
                shown = _shown(diagnostics)
                if not shown:
                    continue
                errors = sum(1 for d in shown if d.get("severity", ERROR) == ERROR)
                path = Path(unquote(urlparse(uri).path))
                files.append({"path": path, "server": server.spec.name, "errors": errors, "warnings": len(shown) - errors, "diagnostics": shown})
        return sorted(files, key=lambda f: (-f["errors"], -f["warnings"], str(f["path"])))

    def status(self) -> list[dict]:
        rows = []
        for server in self.servers:
            client = server.client
            rows.append(
                {
                    "name": server.spec.name,
                    "command": " ".join([server.spec.command, *server.spec.args]),
                    "source": server.spec.source,
                    "extensions": server.spec.extensions,
                    "found": server.spec.resolved_command(),
                    "state": server.state(),
                    "pid": client.process.pid if client is not None and client.process is not None else None,
                    "restarts": server.restarts,
                    "open_files": len(server.versions),
                    "error": server.failure,
                    "last_error": server.last_error,
                    "start_seconds": None if server.start_seconds is None else round(server.start_seconds, 3),
                }
            )
        return rows

    # -- shutdown ------------------------------------------------------------------------------

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every server within ``timeout`` seconds in all, then the loop thread."""
        self._closing = True
        if self.status_file is not None:
            self.status_file.remove()
        if self._loop is None:
            return

        async def stop_all() -> None:
            clients = [s.client for s in self.servers if s.client is not None]
            await asyncio.gather(*(c.shutdown(timeout - 0.5) for c in clients), return_exceptions=True)

        try:
            self.run(stop_all(), timeout)
        except Exception as exc:  # noqa: BLE001 - shutting down: report, never raise
            log.warning("lsp shutdown: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self._loop = None


def _shown(diagnostics: list[dict]) -> list[dict]:
    """Errors and warnings (not hints), by severity then position."""
    return sorted(
        (d for d in diagnostics if d.get("severity", ERROR) <= WARNING),
        key=lambda d: (d.get("severity", ERROR), d["range"]["start"]["line"], d["range"]["start"]["character"]),
    )


def _identity(d: dict) -> tuple:
    """What makes a diagnostic the same one after an edit moved it (its position is left out)."""
    return d.get("severity", ERROR), d.get("message", ""), d.get("source"), str(d.get("code"))


def new_since(diagnostics: list[dict], before: list[dict]) -> list[dict]:
    """The diagnostics not present before: each earlier one cancels one equal one (position aside)."""
    left: dict[tuple, int] = {}
    for d in before:
        left[_identity(d)] = left.get(_identity(d), 0) + 1
    new = []
    for d in diagnostics:
        if left.get(_identity(d), 0) > 0:
            left[_identity(d)] -= 1
        else:
            new.append(d)
    return new


def _lines(diagnostics: list[dict], what: str = "", limit: int = SHOWN) -> list[str]:
    lines = []
    for d in diagnostics[:limit]:
        start = d["range"]["start"]
        kind = "error" if d.get("severity", ERROR) == ERROR else "warning"
        source = f" [{d['source']}]" if d.get("source") else ""
        lines.append(f"  {kind} {start['line'] + 1}:{start['character'] + 1} {d.get('message', '')}{source}")
    if len(diagnostics) > limit:
        lines.append(f"  ... and {len(diagnostics) - limit} more{what}")
    return lines


def format_project(files: list[dict], workdir: Path, scope: str, top: int = PROJECT_FILES, per_file: int = PER_FILE) -> str:
    """A project's errors and warnings per file (from ``LspManager.project``): the *top* worst
    files, *per_file* diagnostics each. *scope* says what was looked at ("in files opened so far")."""
    errors = sum(f["errors"] for f in files)
    warnings = sum(f["warnings"] for f in files)
    lines = [f"Project: {_plural(errors, 'error')}, {_plural(warnings, 'warning')} {scope}."]
    for entry in files[:top]:
        counts = f"{_plural(entry['errors'], 'error')}, {_plural(entry['warnings'], 'warning')}"
        lines.append(f"{relative(entry['path'], workdir)} ({entry['server']}): {counts}")
        lines.extend(_lines(entry["diagnostics"], limit=per_file))
    if len(files) > top:
        lines.append(f"... and {len(files) - top} more files with errors or warnings")
    return "\n".join(lines)


def relative(path: Path, workdir: Path) -> Path:
    try:
        return path.relative_to(workdir)
    except ValueError:
        return path


def format_report(report: Report, workdir: Path, before: list[dict] | None = None) -> str:
    """The lines appended to a tool result (and printed by ``pando lsp diagnostics``). With
    *before* (the file's diagnostics before an edit), only those the edit brought are listed."""
    shown = relative(report.path, workdir)
    lines = []
    if report.notice:
        lines.append(report.notice)
    if before is None:
        if report.diagnostics:
            lines.append(f"LSP diagnostics in {shown} ({report.server}):")
            lines.extend(_lines(report.diagnostics))
        elif report.answered:
            lines.append(f"LSP: no errors or warnings in {shown} ({report.server}).")
    elif report.diagnostics or report.answered:
        new = new_since(report.diagnostics, before)
        old = len(report.diagnostics) - len(new)
        if new:
            lines.append(f"LSP: new errors and warnings in {shown} ({report.server}) since this edit:")
            lines.extend(_lines(new, " new"))
            if old:
                lines.append(f"  ({old} more from before this edit, not listed)")
        elif old:
            lines.append(f"LSP: no new errors or warnings in {shown} ({report.server}); {old} from before this edit.")
        else:
            lines.append(f"LSP: no errors or warnings in {shown} ({report.server}).")
    lines.append(f"Project: {_plural(report.project_errors, 'error')}, {_plural(report.project_warnings, 'warning')}.")
    return "\n".join(lines)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")
