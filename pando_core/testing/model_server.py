"""A scripted, real-HTTP model server speaking the OpenAI and Anthropic wire protocols.

`ScriptedModelServer` listens on 127.0.0.1 (a random free port by default) in a background thread
and answers:

* ``POST /v1/chat/completions`` - OpenAI Chat Completions, streaming (SSE ``data:`` chunks, tool-call
  deltas with ``index``, ``stream_options.include_usage`` usage chunk, ``data: [DONE]``) and
  non-streaming;
* ``POST /v1/messages`` - Anthropic Messages, streaming (``message_start``, ``content_block_*`` for
  thinking / text / tool_use with ``input_json_delta``, ``message_delta``, ``message_stop``) and
  non-streaming;
* ``GET /v1/models`` - the model list (Anthropic shape when an ``anthropic-version`` header is sent,
  OpenAI shape otherwise);
* ``GET /health`` - ``{"status": "ok"}``.

Routing matches on the path suffix, so ``http://127.0.0.1:PORT`` (Anthropic SDK style, which appends
``/v1/messages`` itself) and ``http://127.0.0.1:PORT/v1`` (OpenAI SDK style) both work.

What the server answers is scripted. For every request it uses, in order:

1. the first *rule* whose ``contains`` substring occurs in the last user message text (rules are
   reusable);
2. the next queued response from ``script(...)`` (each consumed once);
3. the default: ``"echo"`` answers ``"echo: <last user text>"``, ``"error"`` answers HTTP 500
   ``script exhausted``, or a fixed `Reply`.

A `Reply` describes one answer: ``text``, ``reasoning``, ``tool_calls``
(``[{"name": ..., "arguments": {...} or "raw json", "id": optional}]``), ``usage``
(``{"prompt_tokens", "completion_tokens", "cached_tokens", "cache_creation_tokens"}``, computed from
the request/response sizes when omitted), ``status`` (>= 400 sends an OpenAI- or Anthropic-shaped
error body, with a ``Retry-After`` header when ``retry_after`` is set), ``delay`` (seconds before the
first byte), ``chunk_delay`` (seconds between streamed chunks, so clients can cancel mid-stream),
``chunk_size`` (characters per text/argument delta), ``finish_reason`` (override; OpenAI or Anthropic
spelling), ``disconnect_after`` (drop the connection after N streamed events).

Example (plugin authors: this is all you need for an end-to-end test against a real HTTP endpoint)::

    from pando_core.testing.model_server import Reply, ScriptedModelServer

    with ScriptedModelServer() as server:
        server.script(
            Reply.tool("write", {"file_path": "a.txt", "content": "x"}),
            Reply.text("done", reasoning="the file is written"),
        )
        server.add_rule(contains="ping", response=Reply.text("pong"))
        server.script(Reply.error(429, retry_after=0))      # queued after the two above
        # point any OpenAI-compatible client at server.base_url (http://127.0.0.1:PORT/v1)
        # or an Anthropic client at server.root_url (http://127.0.0.1:PORT)
        ...
        assert server.requests[0]["model"] == "test-model"   # received JSON bodies, in order

``ScriptedModelServer(api_key="k")`` answers 401 unless ``Authorization: Bearer k`` or
``x-api-key: k`` is sent. ``ScriptedModelServer(models=[...], strict_models=True)`` answers 404
``model_not_found`` for any other model.

From another process (or a shell)::

    python -m pando_core.testing.model_server --script script.json --port 0 --port-file /tmp/url

writes the base URL (``http://127.0.0.1:PORT/v1``) to the port file once listening and serves until
SIGTERM/SIGINT. The script file is JSON::

    {"responses": [{"text": "hi"}, {"tool_calls": [{"name": "ls", "arguments": {}}]}, "plain text"],
     "rules": [{"contains": "ping", "response": {"text": "pong"}}],
     "default": "echo", "models": ["test-model"], "api_key": null}

Only the standard library is used, so importing this module is cheap.
"""

from __future__ import annotations

import argparse
import itertools
import json
import select
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["RecordedRequest", "Reply", "Rule", "ScriptedModelServer", "main"]

_OPENAI_TO_ANTHROPIC_FINISH = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}
_ANTHROPIC_TO_OPENAI_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
}

_DEFAULT_ERROR_MESSAGES = {
    400: "Invalid request.",
    401: "Incorrect API key provided.",
    403: "You do not have permission to access this resource.",
    404: "The requested resource does not exist.",
    408: "Request timed out.",
    413: "Request too large.",
    429: "Rate limit reached. Please try again later.",
    500: "The server had an error while processing your request.",
    502: "Bad gateway.",
    503: "The service is temporarily unavailable.",
    529: "Overloaded.",
}


# --------------------------------------------------------------------------------------------- replies


@dataclass
class Reply:
    """One scripted answer. See the module docstring for the meaning of each field.

    Helper constructors: ``Reply.text("hi")``, ``Reply.tool("write", {...})``,
    ``Reply.tools({"name": ...}, ...)``, ``Reply.error(429, retry_after=0)``, ``Reply.from_dict({...})``.
    """

    text: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] | None = None
    status: int = 200
    error_message: str | None = None
    retry_after: float | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    chunk_size: int = 8
    finish_reason: str | None = None
    reasoning_field: str = "reasoning_content"  # OpenAI-style delta field ("reasoning" for Ollama style)
    signature: str = "sig-test"  # Anthropic thinking-block signature
    headers: dict[str, str] = field(default_factory=dict)
    disconnect_after: int | None = None

    @classmethod
    def from_dict(cls, data: Reply | dict[str, Any] | str) -> Reply:
        """Build a reply from a JSON-ish dict (unknown keys are rejected), a plain string, or a Reply."""
        if isinstance(data, Reply):
            return data
        if isinstance(data, str):
            return cls(text=data)
        if not isinstance(data, dict):
            raise TypeError(f"a scripted response must be a dict, str or Reply, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        values = dict(data)
        if "error" in values and "status" not in values:  # shorthand {"error": 429}
            values["status"] = int(values.pop("error"))
        if "message" in values and "error_message" not in values:
            values["error_message"] = values.pop("message")
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown scripted response field(s): {', '.join(unknown)}")
        return cls(**values)


def _reply_text(cls: type[Reply], text: str, **kwargs: Any) -> Reply:
    """``Reply.text("hello", reasoning=..., chunk_delay=...)``"""
    return cls(text=text, **kwargs)


def _reply_tool(
    cls: type[Reply],
    name: str,
    arguments: dict[str, Any] | str | None = None,
    *,
    id: str | None = None,  # noqa: A002 - mirrors the wire field
    **kwargs: Any,
) -> Reply:
    """``Reply.tool("write", {"file_path": "a.txt", "content": "x"}, text="writing it")``"""
    call: dict[str, Any] = {"name": name, "arguments": {} if arguments is None else arguments}
    if id:
        call["id"] = id
    return cls(tool_calls=[call], **kwargs)


def _reply_tools(cls: type[Reply], *calls: dict[str, Any], **kwargs: Any) -> Reply:
    """``Reply.tools({"name": "ls", "arguments": {}}, {"name": "view", "arguments": {...}})``"""
    return cls(tool_calls=[dict(c) for c in calls], **kwargs)


def _reply_error(
    cls: type[Reply],
    status: int,
    message: str | None = None,
    *,
    retry_after: float | None = None,
    **kwargs: Any,
) -> Reply:
    """``Reply.error(429, retry_after=0)`` / ``Reply.error(500, "boom")``"""
    return cls(status=status, error_message=message, retry_after=retry_after, **kwargs)


# Attached after the dataclass is built: `text` is also a field name, and the generated __init__ has
# already captured the field defaults, so instances still get their own `text` attribute.
Reply.text = classmethod(_reply_text)  # type: ignore[assignment,method-assign]
Reply.tool = classmethod(_reply_tool)  # type: ignore[attr-defined]
Reply.tools = classmethod(_reply_tools)  # type: ignore[attr-defined]
Reply.error = classmethod(_reply_error)  # type: ignore[attr-defined]


@dataclass
class Rule:
    """Answer `response` to every request whose last user text contains `contains` (None = any)."""

    contains: str | None
    response: Reply
    model: str | None = None  # also require this model, when set

    def matches(self, user_text: str, model: str | None) -> bool:
        if self.model is not None and model != self.model:
            return False
        return self.contains is None or self.contains in user_text


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


# ---------------------------------------------------------------------------------------- helpers


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for item in content:
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, dict) and item.get("type") in ("text", "input_text"):
                texts.append(str(item.get("text", "")))
        return "\n".join(t for t in texts if t)
    return ""


def last_user_text(body: dict[str, Any] | None) -> str:
    """Text of the last user message that has text (tool results are skipped)."""
    for message in reversed((body or {}).get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            text = _content_text(message.get("content"))
            if text:
                return text
    return ""


def _split(text: str, size: int) -> list[str]:
    size = max(1, int(size))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _arguments_json(arguments: Any) -> str:
    if arguments is None:
        return "{}"
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments)


def _arguments_object(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    if isinstance(arguments, str) and arguments.strip():
        try:
            parsed = json.loads(arguments)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _estimate_tokens(chars: int) -> int:
    return max(1, (chars + 3) // 4)


@dataclass
class _Usage:
    prompt: int
    completion: int
    cached: int
    creation: int


def _compute_usage(reply: Reply, body: dict[str, Any] | None) -> _Usage:
    given = reply.usage or {}

    def pick(*keys: str) -> int | None:
        for key in keys:
            if given.get(key) is not None:
                return int(given[key])
        return None

    prompt = pick("prompt_tokens", "input_tokens")
    if prompt is None:
        request_chars = len(json.dumps((body or {}).get("messages") or [])) + len(
            json.dumps((body or {}).get("system") or "")
        )
        prompt = _estimate_tokens(request_chars)
    completion = pick("completion_tokens", "output_tokens")
    if completion is None:
        out_chars = len(reply.text) + len(reply.reasoning)
        out_chars += sum(len(_arguments_json(c.get("arguments"))) for c in reply.tool_calls)
        completion = _estimate_tokens(out_chars)
    cached = pick("cached_tokens", "cache_read_tokens") or 0
    creation = pick("cache_creation_tokens") or 0
    return _Usage(prompt=prompt, completion=completion, cached=min(cached, prompt), creation=creation)


def _finish_openai(reply: Reply) -> str:
    if reply.finish_reason:
        return _ANTHROPIC_TO_OPENAI_FINISH.get(reply.finish_reason, reply.finish_reason)
    return "tool_calls" if reply.tool_calls else "stop"


def _finish_anthropic(reply: Reply) -> str:
    if reply.finish_reason:
        return _OPENAI_TO_ANTHROPIC_FINISH.get(reply.finish_reason, reply.finish_reason)
    return "tool_use" if reply.tool_calls else "end_turn"


def _error_type_openai(status: int) -> tuple[str, str | None]:
    if status == 401:
        return "invalid_request_error", "invalid_api_key"
    if status == 403:
        return "permission_error", None
    if status == 404:
        return "invalid_request_error", "model_not_found"
    if status == 429:
        return "requests", "rate_limit_exceeded"
    if status >= 500:
        return "server_error", None
    return "invalid_request_error", None


def _error_type_anthropic(status: int) -> str:
    return {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        529: "overloaded_error",
    }.get(status, "api_error" if status >= 500 else "invalid_request_error")


# ------------------------------------------------------------------------------------- wire formats


class _OpenAIFormat:
    def __init__(self, reply: Reply, body: dict[str, Any], ids: Iterator[int]) -> None:
        self.reply = reply
        self.body = body
        self.model = str(body.get("model") or "test-model")
        self.id = f"chatcmpl-{next(ids)}"
        self.created = int(time.time())
        self.calls = [
            {
                "id": c.get("id") or f"call_{next(ids)}",
                "name": str(c.get("name", "")),
                "arguments": _arguments_json(c.get("arguments")),
            }
            for c in reply.tool_calls
        ]
        self.usage = _compute_usage(reply, body)

    def _usage_json(self) -> dict[str, Any]:
        u = self.usage
        return {
            "prompt_tokens": u.prompt,
            "completion_tokens": u.completion,
            "total_tokens": u.prompt + u.completion,
            "prompt_tokens_details": {"cached_tokens": u.cached},
        }

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    def events(self) -> Iterator[bytes]:
        r = self.reply
        yield _sse(self._chunk({"role": "assistant", "content": ""}))
        for piece in _split(r.reasoning, r.chunk_size):
            yield _sse(self._chunk({r.reasoning_field: piece}))
        for piece in _split(r.text, r.chunk_size):
            yield _sse(self._chunk({"content": piece}))
        for index, call in enumerate(self.calls):
            first = {"index": index, "id": call["id"], "type": "function"}
            first["function"] = {"name": call["name"], "arguments": ""}
            yield _sse(self._chunk({"tool_calls": [first]}))
            for piece in _split(call["arguments"], r.chunk_size):
                yield _sse(self._chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
        yield _sse(self._chunk({}, _finish_openai(r)))
        options = self.body.get("stream_options") or {}
        if isinstance(options, dict) and options.get("include_usage"):
            usage_chunk = self._chunk({})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = self._usage_json()
            yield _sse(usage_chunk)
        yield b"data: [DONE]\n\n"

    def response(self) -> dict[str, Any]:
        r = self.reply
        message: dict[str, Any] = {"role": "assistant", "content": r.text or None, "refusal": None}
        if r.reasoning:
            message[r.reasoning_field] = r.reasoning
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for c in self.calls
            ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_openai(r)}
            ],
            "usage": self._usage_json(),
        }


class _AnthropicFormat:
    def __init__(self, reply: Reply, body: dict[str, Any], ids: Iterator[int]) -> None:
        self.reply = reply
        self.body = body
        self.model = str(body.get("model") or "test-model")
        self.id = f"msg_{next(ids):06d}"
        self.calls = [
            {
                "id": c.get("id") or f"toolu_{next(ids):06d}",
                "name": str(c.get("name", "")),
                "arguments": c.get("arguments"),
            }
            for c in reply.tool_calls
        ]
        self.usage = _compute_usage(reply, body)

    def _usage_json(self, output_tokens: int) -> dict[str, Any]:
        u = self.usage
        return {
            "input_tokens": u.prompt - u.cached,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": u.creation,
            "cache_read_input_tokens": u.cached,
        }

    def _message(self, content: list[dict[str, Any]], stop_reason: str | None, output: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": self._usage_json(output),
        }

    @staticmethod
    def _block(index: int, block: dict[str, Any], deltas: Iterable[dict[str, Any]]) -> Iterator[bytes]:
        yield _sse(
            {"type": "content_block_start", "index": index, "content_block": block}, "content_block_start"
        )
        for delta in deltas:
            yield _sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
        yield _sse({"type": "content_block_stop", "index": index}, "content_block_stop")

    def events(self) -> Iterator[bytes]:
        r = self.reply
        yield _sse({"type": "message_start", "message": self._message([], None, 1)}, "message_start")
        index = 0
        if r.reasoning:
            deltas = [{"type": "thinking_delta", "thinking": p} for p in _split(r.reasoning, r.chunk_size)]
            deltas.append({"type": "signature_delta", "signature": r.signature})
            yield from self._block(index, {"type": "thinking", "thinking": "", "signature": ""}, deltas)
            index += 1
        if r.text:
            deltas = [{"type": "text_delta", "text": p} for p in _split(r.text, r.chunk_size)]
            yield from self._block(index, {"type": "text", "text": ""}, deltas)
            index += 1
        for call in self.calls:
            pieces = _split(_arguments_json(call["arguments"]), r.chunk_size)
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
            block = {"type": "tool_use", "id": call["id"], "name": call["name"], "input": {}}
            yield from self._block(index, block, deltas)
            index += 1
        message_delta = {
            "type": "message_delta",
            "delta": {"stop_reason": _finish_anthropic(r), "stop_sequence": None},
            "usage": {"output_tokens": self.usage.completion},
        }
        yield _sse(message_delta, "message_delta")
        yield _sse({"type": "message_stop"}, "message_stop")

    def response(self) -> dict[str, Any]:
        r = self.reply
        content: list[dict[str, Any]] = []
        if r.reasoning:
            content.append({"type": "thinking", "thinking": r.reasoning, "signature": r.signature})
        if r.text:
            content.append({"type": "text", "text": r.text})
        for call in self.calls:
            content.append(
                {
                    "type": "tool_use",
                    "id": call["id"],
                    "name": call["name"],
                    "input": _arguments_object(call["arguments"]),
                }
            )
        return self._message(content, _finish_anthropic(r), self.usage.completion)


def _sse(payload: dict[str, Any], event: str | None = None) -> bytes:
    data = json.dumps(payload, separators=(",", ":"))
    if event:
        return f"event: {event}\ndata: {data}\n\n".encode()
    return f"data: {data}\n\n".encode()


# ------------------------------------------------------------------------------------------ server


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: ScriptedModelServer


class _ClientGone(Exception):
    """The client closed the connection (or the server is stopping)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    # --- plumbing ---------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.owner.verbose:
            sys.stderr.write("model_server: " + (format % args) + "\n")

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _pause(self, seconds: float) -> None:
        """Sleep `seconds`, raising _ClientGone as soon as the client disconnects or the server stops."""
        owner = self.server.owner
        deadline = time.monotonic() + max(0.0, seconds)
        while True:
            if owner._stopping.is_set():
                raise _ClientGone
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            step = min(remaining, 0.05)
            try:
                readable, _, _ = select.select([self.connection], [], [], step)
            except (OSError, ValueError) as exc:
                raise _ClientGone from exc
            if readable:
                try:
                    peek = self.connection.recv(1, socket.MSG_PEEK)
                except OSError as exc:
                    raise _ClientGone from exc
                if not peek:
                    raise _ClientGone
                time.sleep(step)  # the client pipelined data; nothing to do but wait

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError as exc:
            raise _ClientGone from exc

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self._write(data)

    def _send_error(
        self,
        status: int,
        style: str,
        message: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        message = message or _DEFAULT_ERROR_MESSAGES.get(status, f"HTTP {status}")
        if style == "anthropic":
            payload: dict[str, Any] = {
                "type": "error",
                "error": {"type": _error_type_anthropic(status), "message": message},
            }
        else:
            kind, code = _error_type_openai(status)
            payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = f"{retry_after:g}"
        self._send_json(status, payload, extra)

    def _stream(self, events: Iterable[bytes], reply: Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.flush()
        owner = self.server.owner
        for count, event in enumerate(events):
            if reply.disconnect_after is not None and count >= reply.disconnect_after:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                owner._count("dropped")
                return
            if count and reply.chunk_delay:
                self._pause(reply.chunk_delay)
            self._write(b"%x\r\n%s\r\n" % (len(event), event))
            owner._count("chunks")
        self._write(b"0\r\n\r\n")

    # --- routing ----------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        owner = self.server.owner
        try:
            raw = self._read_body() if method == "POST" else b""
            body: dict[str, Any] | None = None
            if raw:
                try:
                    parsed = json.loads(raw)
                    body = parsed if isinstance(parsed, dict) else {"_json": parsed}
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
            path = self.path.split("?", 1)[0].rstrip("/")
            owner._record(
                RecordedRequest(method, path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            style = (
                "anthropic"
                if path.endswith("/messages") or self.headers.get("anthropic-version")
                else "openai"
            )

            if method == "GET" and path in ("", "/health", "/v1/health"):
                self._send_json(200, {"status": "ok"})
                return
            if not owner._authorised(self.headers):
                self._send_error(401, style)
                return
            if method == "GET" and path.endswith("/models"):
                self._send_json(200, owner._models_payload(style))
                return
            if method != "POST" or not (path.endswith("/chat/completions") or path.endswith("/messages")):
                self._send_error(404, style, f"no route for {method} {self.path}")
                return
            if body is None or "_raw" in body or "_json" in body:
                self._send_error(400, style, "request body must be a JSON object")
                return
            model = body.get("model")
            if owner.strict_models and model not in owner.models:
                self._send_error(
                    404, style, f"The model `{model}` does not exist or you do not have access to it."
                )
                return

            reply = owner._choose(body)
            if reply is None:
                self._send_error(500, style, "script exhausted")
                return
            if reply.delay:
                self._pause(reply.delay)
            if reply.status >= 400:
                self._send_error(reply.status, style, reply.error_message, reply.retry_after, reply.headers)
                return
            fmt: _OpenAIFormat | _AnthropicFormat
            if style == "anthropic":
                fmt = _AnthropicFormat(reply, body, owner._ids)
            else:
                fmt = _OpenAIFormat(reply, body, owner._ids)
            if body.get("stream"):
                self._stream(fmt.events(), reply)
            else:
                self._send_json(200, fmt.response(), reply.headers)
        except _ClientGone:
            self.close_connection = True
            owner._count("disconnects")


class ScriptedModelServer:
    """A real HTTP server on loopback that answers model requests from a script (see module doc)."""

    def __init__(
        self,
        responses: Iterable[Reply | dict[str, Any] | str] = (),
        *,
        rules: Iterable[Rule | dict[str, Any]] = (),
        default: str | Reply | dict[str, Any] = "echo",
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Iterable[str] = ("test-model",),
        strict_models: bool = False,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.api_key = api_key
        self.models = list(models)
        self.strict_models = strict_models
        self.verbose = verbose
        self._lock = threading.Condition(threading.RLock())
        self._queue: deque[Reply] = deque()
        self._rules: list[Rule] = []
        self._received: list[RecordedRequest] = []
        self._counters: dict[str, int] = {"chunks": 0, "disconnects": 0, "dropped": 0}
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.set_default(default)
        self.script(*responses)
        for rule in rules:
            if isinstance(rule, Rule):
                self._rules.append(rule)
            else:
                response = rule.get("response", rule.get("reply"))
                self.add_rule(contains=rule.get("contains"), response=response, model=rule.get("model"))

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> ScriptedModelServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self._requested_port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="scripted-model-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # unblock handlers waiting on keep-alive connections
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> ScriptedModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not running; call start() first")
        return int(self._httpd.server_address[1])

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (what the Anthropic SDK wants as base_url)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (what OpenAI-compatible clients want as base_url)."""
        return self.root_url + "/v1"

    # --- scripting --------------------------------------------------------------------------------

    def script(self, *responses: Reply | dict[str, Any] | str) -> ScriptedModelServer:
        """Queue responses; each is used once, in order (after rules)."""
        replies = [Reply.from_dict(r) for r in responses]
        with self._lock:
            self._queue.extend(replies)
        return self

    def add_rule(
        self,
        contains: str | None = None,
        response: Reply | dict[str, Any] | str | None = None,
        *,
        model: str | None = None,
    ) -> ScriptedModelServer:
        """Answer `response` whenever the last user text contains `contains` (checked before the queue)."""
        if response is None:
            raise ValueError("add_rule needs a response")
        with self._lock:
            self._rules.append(Rule(contains=contains, response=Reply.from_dict(response), model=model))
        return self

    def set_default(self, default: str | Reply | dict[str, Any]) -> None:
        """What to answer when no rule matches and the queue is empty: "echo", "error" or a Reply."""
        if isinstance(default, str) and default in ("echo", "error"):
            self._default: str | Reply = default
        else:
            self._default = Reply.from_dict(default)

    def clear(self) -> None:
        """Forget queued responses, rules and recorded requests."""
        with self._lock:
            self._queue.clear()
            self._rules.clear()
            self._received.clear()

    @property
    def pending(self) -> int:
        """Number of queued responses not yet used."""
        with self._lock:
            return len(self._queue)

    # --- inspection -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """JSON bodies of the model requests received (chat/completions and messages), in order."""
        with self._lock:
            return [
                r.body
                for r in self._received
                if r.body is not None
                and r.method == "POST"
                and r.path.endswith(("/chat/completions", "/messages"))
            ]

    @property
    def received(self) -> list[RecordedRequest]:
        """Every request received (method, path, lower-cased headers, body)."""
        with self._lock:
            return list(self._received)

    @property
    def disconnects(self) -> int:
        """Responses abandoned because the client closed the connection mid-way."""
        with self._lock:
            return self._counters["disconnects"]

    @property
    def chunks_sent(self) -> int:
        """Total SSE events written across all streams."""
        with self._lock:
            return self._counters["chunks"]

    def wait_for(self, predicate: Callable[[ScriptedModelServer], bool], timeout: float = 5.0) -> bool:
        """Block until `predicate(server)` is true (re-checked whenever the server records something)."""
        deadline = time.monotonic() + timeout
        with self._lock:  # a re-entrant lock: the predicate may use the locked properties
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 0.1))
            return True

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        return self.wait_for(lambda s: len(s.requests) >= count, timeout)

    # --- used by the handler ----------------------------------------------------------------------

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._received.append(request)
            self._lock.notify_all()

    def _count(self, name: str) -> None:
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + 1
            self._lock.notify_all()

    def _authorised(self, headers: Any) -> bool:
        if not self.api_key:
            return True
        auth = headers.get("Authorization") or ""
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        return self.api_key in (bearer, headers.get("x-api-key"))

    def _choose(self, body: dict[str, Any]) -> Reply | None:
        text = last_user_text(body)
        model = body.get("model")
        with self._lock:
            for rule in self._rules:
                if rule.matches(text, model):
                    return rule.response
            if self._queue:
                return self._queue.popleft()
            default = self._default
        if default == "echo":
            return Reply(text=f"echo: {text}")
        if default == "error":
            return None
        assert isinstance(default, Reply)
        return default

    def _models_payload(self, style: str) -> dict[str, Any]:
        if style == "anthropic":
            data = [
                {
                    "type": "model",
                    "id": m,
                    "display_name": m,
                    "created_at": "2025-01-01T00:00:00Z",
                    "lifecycle": "active",
                }
                for m in self.models
            ]
            return {
                "data": data,
                "has_more": False,
                "first_id": self.models[0] if self.models else None,
                "last_id": self.models[-1] if self.models else None,
            }
        created = 1_700_000_000
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": created, "owned_by": "scripted"} for m in self.models
            ],
        }


# --------------------------------------------------------------------------------------------- CLI


def load_script(path: str) -> dict[str, Any]:
    """Read a script file: {"responses": [...], "rules": [...], "default": ..., "models": [...]}."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if isinstance(data, list):
        data = {"responses": data}
    if not isinstance(data, dict):
        raise ValueError("a script file must hold a JSON object or a list of responses")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pando_core.testing.model_server",
        description="Serve scripted OpenAI/Anthropic-compatible model responses on loopback.",
    )
    parser.add_argument("--script", help="JSON script file ({responses, rules, default, models, api_key})")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = a random free port (default)")
    parser.add_argument("--port-file", help="write the base URL here once listening")
    parser.add_argument("--api-key", help="require this API key")
    parser.add_argument("--default", choices=["echo", "error"], help="answer when the script is exhausted")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = parser.parse_args(argv)

    script = load_script(args.script) if args.script else {}
    server = ScriptedModelServer(
        script.get("responses") or (),
        rules=script.get("rules") or (),
        default=args.default or script.get("default") or "echo",
        api_key=args.api_key or script.get("api_key"),
        host=args.host,
        port=args.port,
        models=script.get("models") or ("test-model",),
        strict_models=bool(script.get("strict_models", False)),
        verbose=args.verbose,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    server.start()
    try:
        if args.port_file:
            from pathlib import Path

            from pando_core.fsutil import atomic_write

            atomic_write(Path(args.port_file), (server.base_url + "\n").encode("utf-8"))
        print(server.base_url, flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
