"""A small LSP client: JSON-RPC 2.0 over a server's stdio with Content-Length framing.

It runs on an asyncio loop (the manager's background thread). Messages are built from and read into
``lsprotocol`` types, so field names and shapes follow the specification without a framework.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("pando.lsp")


class LspError(Exception):
    """The server failed, exited or answered with an error."""


class LspClient:
    def __init__(
        self,
        name: str,
        argv: list[str],
        root: Path,
        initialization_options: dict | None = None,
        on_diagnostics: Callable[[str, int | None, list[dict]], None] | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.root = root
        self.initialization_options = initialization_options
        self.on_diagnostics = on_diagnostics
        self.capabilities: dict[str, Any] = {}
        self.process: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None
        self._stderr_reader: asyncio.Task | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)  # what a crash left on stderr
        self.exited = asyncio.Event()

    @property
    def alive(self) -> bool:
        return self.process is not None and not self.exited.is_set()

    async def start(self) -> None:
        from lsprotocol import types

        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(self.root),
        )
        self._reader = asyncio.create_task(self._read_loop())
        self._stderr_reader = asyncio.create_task(self._drain_stderr())
        params = types.InitializeParams(
            process_id=os.getpid(),
            root_uri=self.root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=self.root.as_uri(), name=self.root.name)],
            initialization_options=self.initialization_options,
            capabilities=types.ClientCapabilities(
                text_document=types.TextDocumentClientCapabilities(
                    synchronization=types.TextDocumentSyncClientCapabilities(did_save=True),
                    publish_diagnostics=types.PublishDiagnosticsClientCapabilities(version_support=True),
                    diagnostic=types.DiagnosticClientCapabilities(),
                ),
                workspace=types.WorkspaceClientCapabilities(workspace_folders=True, configuration=True),
            ),
        )
        result = await self.request(types.INITIALIZE, params)
        self.capabilities = result.get("capabilities", {}) if isinstance(result, dict) else {}
        self.notify(types.INITIALIZED, types.InitializedParams())

    # -- messages ------------------------------------------------------------------------------

    def _send(self, message: dict) -> None:
        if not self.alive or self.process.stdin is None:
            raise LspError(f"{self.name} is not running")
        body = json.dumps(message, separators=(",", ":")).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    @staticmethod
    def _plain(params: Any) -> Any:
        if params is None or isinstance(params, dict | list):
            return params
        from lsprotocol.converters import get_converter

        return get_converter().unstructure(params)

    async def request(self, method: str, params: Any = None) -> Any:
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self._send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": self._plain(params)})
            return await future
        finally:
            self._pending.pop(request_id, None)

    def notify(self, method: str, params: Any = None) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": self._plain(params)})

    async def _read_message(self) -> dict | None:
        stdout = self.process.stdout
        length = None
        while True:
            line = await stdout.readline()
            if not line:
                return None
            line = line.strip()
            if not line:
                break
            key, _, value = line.decode("ascii", "replace").partition(":")
            if key.lower() == "content-length":
                length = int(value.strip())
        if length is None:
            raise LspError(f"{self.name} sent a message without Content-Length")
        return json.loads(await stdout.readexactly(length))

    async def _read_loop(self) -> None:
        try:
            while True:
                message = await self._read_message()
                if message is None:
                    break
                self._dispatch(message)
        except (asyncio.IncompleteReadError, LspError, ValueError) as exc:
            log.warning("lsp %s: unreadable output: %s", self.name, exc)
        finally:
            self.exited.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(LspError(f"{self.name} exited"))

    async def _drain_stderr(self) -> None:
        """Read stderr so the server never blocks on it, keeping its last lines."""
        while line := await self.process.stderr.readline():
            text = line.decode("utf-8", "replace").rstrip()
            if text:
                self._stderr.append(text)

    def exit_summary(self) -> str:
        """``exit code N: <the last line on stderr>``, as far as known."""
        code = self.process.returncode if self.process is not None else None
        parts = [f"exit code {code}" if code is not None else "still running"]
        if self._stderr:
            parts.append(self._stderr[-1][:300])
        return ": ".join(parts)

    def _dispatch(self, message: dict) -> None:
        method = message.get("method")
        if method is None:  # a response
            future = self._pending.get(message.get("id"))
            if future is not None and not future.done():
                if "error" in message:
                    future.set_exception(LspError(f"{self.name}: {message['error'].get('message', 'error')}"))
                else:
                    future.set_result(message.get("result"))
            return
        if "id" in message:  # a request from the server: answer so that it does not wait on us
            self._send({"jsonrpc": "2.0", "id": message["id"], "result": self._server_request(method, message)})
            return
        if method == "textDocument/publishDiagnostics" and self.on_diagnostics is not None:
            params = message.get("params") or {}
            self.on_diagnostics(params.get("uri", ""), params.get("version"), params.get("diagnostics") or [])

    @staticmethod
    def _server_request(method: str, message: dict) -> Any:
        if method == "workspace/configuration":
            return [None for _ in (message.get("params") or {}).get("items", [])]
        if method == "workspace/workspaceFolders":
            return None
        return None

    # -- documents -----------------------------------------------------------------------------

    def did_open(self, uri: str, language: str, version: int, text: str) -> None:
        from lsprotocol import types

        item = types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)
        self.notify(types.TEXT_DOCUMENT_DID_OPEN, types.DidOpenTextDocumentParams(text_document=item))

    def did_change(self, uri: str, version: int, text: str) -> None:
        from lsprotocol import types

        params = types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
        self.notify(types.TEXT_DOCUMENT_DID_CHANGE, params)

    def did_save(self, uri: str, text: str) -> None:
        from lsprotocol import types

        params = types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri), text=text)
        self.notify(types.TEXT_DOCUMENT_DID_SAVE, params)

    @property
    def pulls(self) -> bool:
        return bool(self.capabilities.get("diagnosticProvider"))

    async def pull(self, uri: str) -> list[dict]:
        from lsprotocol import types

        params = types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri))
        report = await self.request(types.TEXT_DOCUMENT_DIAGNOSTIC, params)
        return (report or {}).get("items") or []

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Ask politely (shutdown, exit), then kill; bounded by ``timeout`` in all."""
        if self.process is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self.alive:
            try:
                await asyncio.wait_for(self.request("shutdown"), max(deadline - loop.time(), 0.1) / 2)
                self.notify("exit")
            except (TimeoutError, LspError, OSError, RuntimeError):
                pass
        try:
            await asyncio.wait_for(self.process.wait(), max(deadline - loop.time(), 0.1))
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        for reader in (self._reader, self._stderr_reader):
            if reader is not None:
                reader.cancel()
