"""``pando run``: one prompt, no questions asked, output as text, JSON or a JSON event stream.

Exit codes: 0 success, 1 error (provider failure, permission denied), 2 bad usage or
configuration, 130 cancelled (Ctrl-C / SIGINT / SIGTERM).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import UsageError
from ..errors import one_line as short  # progress and tool summaries on one line

if TYPE_CHECKING:  # the agent is imported by the App, not to check the options before it starts
    from ..agent.turn_records import AgentEvent, TurnResult

OUTPUT_FORMATS = ("text", "json", "stream-json")
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_LIMIT, EXIT_CANCELLED = 0, 1, 2, 3, 130


def _input_object(raw: Any) -> Any:
    """A tool call's input as the JSON object the model sent (the raw text when it is not JSON)."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        return raw


def result_json(result: TurnResult) -> dict[str, Any]:
    return {
        "session_id": result.session_id,
        "response": result.response,
        "model": result.model,
        "tokens_in": result.tokens_in,
        "tokens_out": result.tokens_out,
        "cost": round(result.cost, 6),
        "tool_calls": [dict(call, input=_input_object(call.get("input"))) for call in result.tool_calls],
        "status": result.status,
        **({"error": result.error} if result.error else {}),
        **({"denials": result.denials} if result.denials else {}),
        **({"plan": result.plan} if result.plan else {}),
        **({"continuations": result.continuations} if result.continuations else {}),
    }


def exit_code_for(result: TurnResult) -> int:
    if result.status == "cancelled":
        return EXIT_CANCELLED
    if result.status == "error" and result.error_kind in ("config", "usage"):
        return EXIT_USAGE  # the configuration is wrong: nothing was sent
    if result.status in ("error", "permission_denied"):
        return EXIT_ERROR
    if result.status in ("max_requests", "stuck"):
        return EXIT_LIMIT  # the turn was stopped, not finished
    return EXIT_OK


class Spinner:
    """A small stderr spinner for TTYs, stopped at the first streamed text."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.label = "thinking"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        start = time.monotonic()
        index = 0
        while not self._stop.wait(0.1):
            elapsed = time.monotonic() - start
            self.stream.write(f"\r{self.FRAMES[index % len(self.FRAMES)]} {self.label} {elapsed:4.1f}s ")
            self.stream.flush()
            index += 1
        self.stream.write("\r\033[K")
        self.stream.flush()

    def stop(self) -> None:
        if self._thread is not None and not self._stop.is_set():
            self._stop.set()
            self._thread.join(timeout=1)


def stream_json_event(event: AgentEvent) -> dict[str, Any] | None:
    """One agent event as the ``-f stream-json`` line shows it (None for events that format leaves
    out); ``pando serve`` streams the same objects to the browser."""
    data: dict[str, Any]
    if event.type == "content_delta":
        data = {"type": "text_delta", "text": event.data["delta"]}
    elif event.type == "thinking_delta":
        data = {"type": "reasoning_delta", "text": event.data["delta"]}
    elif event.type == "tool_call":
        call = event.data["tool_call"]
        data = {"type": "tool_call", "id": call["id"], "name": call["name"], "input": _input_object(call["input"])}
    elif event.type == "tool_result":
        part = event.data["tool_result"]
        data = {
            "type": "tool_result",
            "id": part["tool_call_id"],
            "name": part["name"],
            "content": part["content"],
            "is_error": part["is_error"],
        }
    elif event.type == "compaction":
        data = {"type": "compaction", **event.data}
    elif event.type == "attached":
        data = {"type": "attached", "files": event.data["files"]}
    elif event.type == "todos":
        data = {"type": "todos", "todos": event.data["todos"]}
    elif event.type == "plan":
        data = {"type": "plan", "plan": event.data["plan"]}
    elif event.type == "error":
        data = {"type": "error", "error": event.data["error"]}
    elif event.type == "continuation":
        data = {"type": "continuation", **event.data}
    else:
        return None
    data["session_id"] = event.session_id
    return data


def continuation_line(data: dict[str, Any]) -> str:
    """What a person is told when a Stop hook makes the agent go on (or is refused past the limit)."""
    reason = short(str(data.get("reason", "")), 160)
    if data.get("refused"):
        return f"↻ a Stop hook asked to go on again; not after {data.get('n')} follow-up turns ([agent] max_stop_continuations): {reason}"
    return f"↻ a Stop hook asked to go on ({data.get('n')}): {reason}"


class EventPrinter:
    """Shows a turn's agent events: text on stdout (tool calls on a terminal's stderr), or stream-json."""

    def __init__(self, output_format: str, quiet: bool, out: TextIO, err: TextIO) -> None:
        self.format = output_format
        self.quiet = quiet
        self.out = out
        self.err = err
        self.tty = err.isatty() and not quiet
        self.spinner = Spinner(err) if self.tty and output_format == "text" else None
        self.wrote_text = False

    def __call__(self, event: AgentEvent) -> None:
        if self.format == "stream-json":
            self._stream_json(event)
        elif self.format == "text":
            self._text(event)
        elif event.type == "continuation" and not self.quiet:  # -f json: stdout stays the result alone
            self.err.write(continuation_line(event.data) + "\n")
            self.err.flush()

    def _stream_json(self, event: AgentEvent) -> None:
        data = stream_json_event(event)
        if data is None:
            return
        self.out.write(json.dumps(data) + "\n")
        self.out.flush()

    def _text(self, event: AgentEvent) -> None:
        if event.type == "content_delta":
            if self.spinner:
                self.spinner.stop()
            self.out.write(event.data["delta"])
            self.out.flush()
            self.wrote_text = True
        elif event.type == "tool_call" and not self.quiet:
            # tool lines go to stderr, on a terminal or not: stdout stays the answer alone
            call = event.data["tool_call"]
            if self.spinner:
                self.spinner.label = f"running {call['name']}"
            clear = "\r\033[K" if self.tty else ""
            self.err.write(f"{clear}• {call['name']} {short(call['input'], 180)}\n")
            self.err.flush()
        elif event.type == "tool_result" and not self.quiet:
            part = event.data["tool_result"]
            if part["is_error"]:
                self.err.write(f"  ✗ {part['name']} failed: {short(part['content'], 200)}\n")
            elif not self.tty:
                self.err.write(f"  ✓ {part['name']}\n")
            self.err.flush()
        elif event.type == "attached" and not self.quiet:
            from ..agent.mentions import attached_line

            for item in event.data["files"]:
                self.err.write(attached_line(item) + "\n")
            self.err.flush()
        elif event.type == "continuation":
            if self.wrote_text:
                self.out.write("\n")  # the follow-up turn's answer starts on a line of its own
            if not self.quiet:
                self.err.write(continuation_line(event.data) + "\n")
                self.err.flush()
        elif event.type == "compaction" and self.tty:
            message = (
                "⚡ compacting context…" if event.data.get("state") == "start" else "✓ context compacted"
            )
            self.err.write(message + "\n")


@contextmanager
def cancel_on_signals() -> Iterator[asyncio.Event]:
    """Inside a running loop: an event set by SIGINT or SIGTERM for as long as the block runs."""
    loop = asyncio.get_running_loop()
    cancel = asyncio.Event()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, cancel.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or no signals on this platform
    try:
        yield cancel
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def check_output_format(value: str | None) -> str:
    """The ``--output-format`` value, lower-cased (``JSON`` is ``json``); a usage error if unknown."""
    value = (value or "text").lower()
    if value not in OUTPUT_FORMATS:
        raise UsageError(f"--output-format must be one of {', '.join(OUTPUT_FORMATS)}")
    return value


def prepare_app(app: Any, *, yolo: bool = False, model: str | None = None, attachments: list | None = None) -> None:
    """Before the first prompt of ``pando run`` or ``pando goal``.

    Applies ``--yolo`` / ``--model`` (for an App not built with them), fails early, with the how-to,
    when no model is configured or the model takes no images but *attachments* has some, and checks
    the primary when this instance is a secondary.
    """
    from ..agent.attachments import check_model_takes_images
    from ..agent.models import resolve_model

    if yolo:
        app.permissions.yolo = True
    if model:
        app.model_ref = model
    resolved = resolve_model(app.config, app.model_ref)
    check_model_takes_images(resolved, list(attachments or []))
    app.ensure_primary()


def run_non_interactive(
    app: Any,
    prompt: str,
    *,
    output_format: str = "text",
    quiet: bool = False,
    yolo: bool = False,
    session_id: str | None = None,
    continue_last: bool = False,
    model: str | None = None,
    plan: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> int:
    """*attachments*: message parts sent with the prompt (``--image`` files, see agent/attachments.py)."""
    out = out or sys.stdout
    err = err or sys.stderr
    output_format = check_output_format(output_format)
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    prepare_app(app, yolo=yolo, model=model, attachments=attachments)
    if session_id:
        session = app.sessions.restore(session_id)
    elif continue_last:
        latest = app.sessions.latest()
        session = app.sessions.restore(latest["id"]) if latest else app.sessions.create(title=short(prompt, 50))
    else:
        session = app.sessions.create(title=short(prompt, 50))
    _set_plan_mode(app, session["id"], plan)
    printer = EventPrinter(output_format, quiet, out, err)
    from ..slash_commands.render import invocation_for

    called = invocation_for(app, prompt)  # `pando run /NAME args`: a custom command
    chosen_model = model or getattr(app.options, "model", None)
    result = asyncio.run(
        _run_with_signals(
            app, session["id"], prompt, printer, called=called, chosen_model=chosen_model, attachments=attachments
        )
    )
    app.sessions.end(session["id"])
    if output_format == "json":
        out.write(json.dumps(result_json(result)) + "\n")
    elif output_format == "stream-json":
        out.write(json.dumps({"type": "result", **result_json(result)}) + "\n")
    else:
        if printer.wrote_text and not result.response.endswith("\n"):
            out.write("\n")
        if result.plan:
            out.write(("\n" if printer.wrote_text else "") + result.plan.rstrip() + "\n")
        elif plan and result.status == "success":
            err.write("pando: the model presented no plan (plan mode stays on for this session)\n")
        if result.status == "permission_denied":
            for denial in result.denials:
                err.write(
                    f"pando: permission denied: {denial['tool']} {denial['action']} {denial['description']}\n"
                )
            err.write("pando: re-run with --yolo or allow the tool in [permissions] to let it run\n")
        elif result.status == "error":
            err.write(f"pando: error: {result.error}\n")
        elif result.status == "cancelled":
            err.write("pando: cancelled\n")
        elif result.status in ("max_requests", "stuck"):
            err.write(f"pando: stopped: {result.error}\n")
    out.flush()
    return exit_code_for(result)


def _set_plan_mode(app: Any, session_id: str, plan: bool) -> None:
    """``--plan``: the turn plans (read-only tools, ends with the plan). Without it, a session
    left in plan mode by an earlier ``--plan`` run goes on with its plan accepted."""
    from ..agent import plan_mode

    if plan:
        plan_mode.start(app, session_id)
    elif plan_mode.is_planning(app, session_id):
        plan_mode.accept(app, session_id)


async def _run_with_signals(
    app: Any,
    session_id: str,
    prompt: str,
    printer: EventPrinter,
    *,
    called: Any = None,
    chosen_model: str | None = None,
    attachments: list | None = None,
) -> TurnResult:
    from ..slash_commands.render import GRANT_OWNER, prepare

    model_ref = None
    if called is not None:
        invocation = await prepare(app, session_id, *called)
        for note in invocation.notes:
            printer.err.write(f"pando: /{invocation.command.name}: {note}\n")
        prompt, model_ref = invocation.prompt, (None if chosen_model else invocation.model or None)
        app.permissions.grant_temporary(session_id, GRANT_OWNER, invocation.grants)
    if printer.spinner:
        printer.spinner.start()
    try:
        with cancel_on_signals() as cancel:
            return await app.coder_agent.run(
                session_id, prompt, model_ref=model_ref, on_event=printer, cancel_event=cancel, attachments=attachments
            )
    finally:
        app.permissions.revoke_temporary(session_id, GRANT_OWNER)
        if printer.spinner:
            printer.spinner.stop()
