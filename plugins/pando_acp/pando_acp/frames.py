"""The stdio wire of ``pando acp``: newline-delimited JSON-RPC frames, and only frames, on stdout.

``reserve_stdout()`` moves the real stdout to a private descriptor before anything else runs and
points descriptor 1 at stderr, so a stray ``print`` (of pando, a plugin or a library) can never
corrupt the protocol. ``FrameTransport`` reads and writes the frames: unlike the library's own
reader, which drops a line it cannot parse, it answers a malformed frame with the JSON-RPC error
(-32700 parse error, -32600 invalid request) so the client learns what went wrong. It also maps a
few method names the library does not route (``session/set_model``, still used by editors) to
extension methods the agent answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from typing import Any

log = logging.getLogger("pando.acp.frames")

FRAME_LIMIT = 64 * 1024 * 1024  # editors attach whole files to prompts
# methods of the protocol the library has no route for, answered by the agent's ext_method
ALIASED_METHODS = {"session/set_model": "_session/set_model"}


def reserve_stdout() -> int:
    """A private duplicate of stdout for protocol frames; fd 1 and ``sys.stdout`` then go to stderr."""
    sys.stdout.flush()
    frames_fd = os.dup(1)
    os.dup2(2, 1)
    return frames_fd


def error_frame(code: int, message: str, request_id: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def check_frame(line: bytes) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``(message, None)`` for a frame to dispatch, ``(None, error reply)`` for a malformed one."""
    try:
        message = json.loads(line)
    except ValueError as exc:
        return None, error_frame(-32700, f"Parse error: the frame is not JSON ({exc.msg} at column {exc.colno})")
    if not isinstance(message, dict):
        return None, error_frame(-32600, "Invalid request: a frame must be one JSON object (batches are not supported)")
    method = message.get("method")
    if method is None and "id" not in message:
        return None, error_frame(-32600, "Invalid request: the frame has neither a method nor an id")
    if method is not None and not isinstance(method, str):
        return None, error_frame(-32600, "Invalid request: method must be a string", message.get("id"))
    if method in ALIASED_METHODS:
        message = dict(message, method=ALIASED_METHODS[method])
    return message, None


class FrameTransport:
    """An ``acp`` message transport over a reader and a writer of newline-delimited JSON."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._write_lock = asyncio.Lock()
        self._closed = False

    def post(self, message: dict[str, Any]) -> None:
        """Write a frame now, without waiting for the pipe (``drain`` waits): a streamed chunk
        leaves at once, from inside the agent's turn, in the order the turn produced it."""
        if self._closed:
            raise ConnectionError("the client has gone")
        data = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
        try:
            self._writer.write(data)
        except (ConnectionError, RuntimeError) as exc:
            self._closed = True
            raise ConnectionError("the client has gone") from exc

    async def drain(self) -> None:
        async with self._write_lock:
            try:
                await self._writer.drain()
            except ConnectionError as exc:
                self._closed = True
                raise ConnectionError("the client has gone") from exc

    async def send(self, message: dict[str, Any]) -> None:
        self.post(message)
        await self.drain()

    async def receive(self) -> dict[str, Any] | None:
        while True:
            try:
                line = await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                line = exc.partial  # the last frame may lack its newline
                if not line.strip():
                    return None
            except asyncio.LimitOverrunError:
                await self._skip_long_line()
                await self._reply(error_frame(-32600, f"Invalid request: a frame is longer than {FRAME_LIMIT} bytes"))
                continue
            if not line.strip():
                continue
            message, error = check_frame(line)
            if error is not None:
                log.warning("malformed frame: %s", error["error"]["message"])
                await self._reply(error)
                continue
            return message

    async def _skip_long_line(self) -> None:
        while True:
            try:
                await self._reader.readuntil(b"\n")
                return
            except asyncio.LimitOverrunError as exc:
                await self._reader.readexactly(exc.consumed)
            except asyncio.IncompleteReadError:
                return

    async def _reply(self, frame: dict[str, Any]) -> None:
        try:
            await self.send(frame)
        except ConnectionError:
            pass

    async def close(self) -> None:
        self._closed = True
        try:
            self._writer.close()
        except Exception:  # noqa: BLE001 - the pipe may already be gone
            log.debug("closing stdout failed", exc_info=True)


async def open_stdio(frames_fd: int, input_fd: int = 0) -> FrameTransport:
    """A transport reading frames from ``input_fd`` and writing them to ``frames_fd``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=FRAME_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(input_fd, "rb", 0, closefd=False))
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(frames_fd, "wb", 0)
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return FrameTransport(reader, writer)
