"""The interactive session: what bare ``pando`` runs in a terminal.

A prompt_toolkit prompt (persistent history in ``.pando/history``, multi-line input, slash-command
completion) showing the instance's role; answers stream into a transient rich ``Live`` region and
are printed once, as markdown, when each text segment ends (so nothing is printed twice and the
scrollback holds only the final rendering). Tool calls and results take one line each. Tool
permissions are asked with a questionary select; Ctrl-C cancels the running turn (the partial
answer is stored with finish reason ``canceled``); Ctrl-C twice at the prompt, Ctrl-D or ``/exit``
quit. A failover (this instance promoted, or the primary changing) is announced in one line and the
session carries on.

When stdin is not a terminal, bare ``pando`` never prompts: the whole of stdin is one prompt, run
like ``pando run`` (or the help is printed when stdin is empty).

Key bindings at the prompt: Enter sends; Esc then Enter (or Alt-Enter), or a trailing backslash
followed by Enter, insert a new line; Up/Down walk the history; Tab completes commands.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..agent.tools.base import PermissionRequest
from ..errors import one_line as short
from ..services.permissions import ALLOW_ALWAYS, ALLOW_ONCE, ALLOW_SESSION, DENY
from ..slash_commands.render import commands_of, parse_invocation
from . import session_commands

PERMISSION_CHOICES = (
    ("Allow once", ALLOW_ONCE),
    ("Allow for this session", ALLOW_SESSION),
    ("Always allow", ALLOW_ALWAYS),
    ("Deny", DENY),
)
DOUBLE_CTRL_C_S = 2.0
PRIMARY_POLL_S = 0.5
DIFF_PREVIEW_LINES = 16

BUILTIN_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("/help", "", "show this help"),
    ("/new", "", "end this session and start a new one"),
    ("/sessions", "[id]", "pick a recent session to resume"),
    ("/model", "[provider/model]", "show or switch the model"),
    ("/compact", "", "summarise the conversation so far to free context"),
    ("/clear", "", "clear the screen"),
    ("/plugins", "", "list the loaded plugins"),
    ("/status", "", "role, epoch, instance, primary, session, tokens, cost"),
    ("/undo", "", "undo the file changes of the last turn that changed files"),
    ("/rewind", "[turn]", "pick a turn: files, conversation or both back to before it"),
    ("/plan", "[off]", "plan mode: read-only tools until you accept the model's plan"),
    ("/exit", "", "quit (also /quit, Ctrl-D)"),
)
ALIASES = {"/quit": "/exit", "/q": "/exit", "/?": "/help", "/cls": "/clear"}

KEY_HELP: tuple[tuple[str, str], ...] = (
    ("Enter", "send the message"),
    ("Esc Enter / Alt-Enter", "insert a new line (so does a trailing \\ before Enter)"),
    ("Up / Down", "walk the prompt history (kept in .pando/history)"),
    ("Tab", "complete a slash command"),
    ("Ctrl-C", "cancel the running answer; at the prompt, press twice within 2 s to quit"),
    ("Ctrl-D", "quit (on an empty line)"),
)


# ------------------------------------------------------------------------------------------ helpers

_SUMMARY_KEYS = ("command", "pattern", "file_path", "path", "url", "query", "description", "prompt", "name")


def tool_summary(raw_input: Any, limit: int = 90) -> str:
    """One short line describing a tool call's input (``ls -la``, ``src/app.py``, ...)."""
    args: Any = raw_input
    if isinstance(raw_input, str):
        try:
            args = json.loads(raw_input) if raw_input.strip() else {}
        except ValueError:
            return short(raw_input, limit)
    if not isinstance(args, dict):
        return short(args, limit)
    for key in _SUMMARY_KEYS:
        value = args.get(key)
        if value:
            text = str(value)
            if key == "pattern" and args.get("path"):
                text = f"{text} in {args['path']}"
            return short(text, limit)
    return short(json.dumps(args, ensure_ascii=False, default=str), limit) if args else ""


def _ago(ms: int | None) -> str:
    if not ms:
        return ""
    seconds = max(0, time.time() - ms / 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"


def history_path(workdir: Path) -> Path | None:
    """``<workdir>/.pando/history``, else ``~/.pando/history``; None when neither is writable."""
    for directory in (Path(workdir) / ".pando", Path.home() / ".pando"):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / "history"
            path.touch(exist_ok=True)
            return path
        except OSError:
            continue
    return None


@contextmanager
def _no_echo(stream: Any) -> Iterator[None]:
    """While a turn runs: keystrokes are not echoed into the display (they stay type-ahead)."""
    try:
        import termios

        fd = stream.fileno()
        saved = termios.tcgetattr(fd)
    except Exception:  # noqa: BLE001 - not a terminal, or no termios: nothing to do
        yield
        return
    quiet = list(saved)
    quiet[3] &= ~(termios.ECHO | termios.ECHONL)
    try:
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
    except termios.error:
        pass
    try:
        yield
    finally:
        try:
            termios.tcsetattr(fd, termios.TCSANOW, saved)
        except termios.error:
            pass


# -------------------------------------------------------------------------------------- turn view

LIVE_TAIL_CHARS = 6000


def live_tail(text: str, max_chars: int = LIVE_TAIL_CHARS) -> str:
    """The end of a long streamed answer, cut at a paragraph, for the live region only.

    Re-rendering the whole answer ten times a second gets slow; only the last screenful is shown
    anyway. An open code fence before the cut is re-opened so the tail still renders as code.
    """
    if len(text) <= max_chars:
        return text
    cut = text.rfind("\n\n", 0, len(text) - max_chars)
    if cut <= 0:
        cut = text.rfind("\n", 0, len(text) - max_chars)
    if cut <= 0:
        return text
    head, tail = text[:cut], text[cut:].lstrip("\n")
    fences = [line for line in head.splitlines() if line.lstrip().startswith("```")]
    if len(fences) % 2 == 1:
        tail = fences[-1].strip() + "\n" + tail
    return tail


class TurnView:
    """Renders one turn's agent events.

    Interactive terminals: streamed text goes into a transient ``Live`` region (its tail, as
    markdown, with a spinner while waiting); each finished text segment is printed once as
    markdown above it. Other outputs (dumb terminal, redirected): deltas are written as they come.
    """

    def __init__(self, console: Any) -> None:
        self.console = console
        self.live_mode = bool(console.is_terminal and not console.is_dumb_terminal)
        self.text = ""
        self.thinking = ""
        self.status = "thinking…"
        self._live: Any = None
        self._plain_open = False
        self._spinner: Any = None

    # -- live region -----------------------------------------------------------------------------

    def start(self) -> None:
        if not self.live_mode or self._live is not None:
            return
        from rich.live import Live
        from rich.spinner import Spinner

        self._spinner = Spinner("dots", style="cyan")
        self._live = Live(
            console=self.console,
            get_renderable=self._renderable,
            refresh_per_second=10,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
            vertical_overflow="visible",
        )
        self._live.start()

    def pause(self) -> None:
        """Stop the live region (before a question); the text streamed so far is kept in memory."""
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()

    def resume(self, status: str | None = None) -> None:
        if status:
            self.status = status
        self.start()

    def _renderable(self) -> Any:
        return _LiveTail(self)

    # -- events ----------------------------------------------------------------------------------

    def on_event(self, event: Any) -> None:
        kind, data = event.type, event.data
        if kind == "content_delta":
            delta = data.get("delta", "")
            self.text += delta
            if not self.live_mode:
                self.console.file.write(delta)
                self.console.file.flush()
                self._plain_open = not delta.endswith("\n") if delta else self._plain_open
        elif kind == "thinking_delta":
            self.thinking += data.get("delta", "")
            self.status = "thinking…"
        elif kind == "request":
            self.thinking = ""
            self.status = "thinking…"
        elif kind == "tool_call":
            call = data.get("tool_call", {})
            self.flush()
            name = str(call.get("name", "?"))
            self.line(self._tool_line(name, tool_summary(call.get("input", ""))))
            self.status = f"running {name}…"
        elif kind == "tool_result":
            part = data.get("tool_result", {})
            if part.get("is_error"):
                self.line(self._styled(f"  ✗ {short(part.get('content', ''), 110)}", "red"))
            else:
                self.line(self._styled("  ✓", "green"))
        elif kind == "attached":
            from ..agent.mentions import attached_line

            for item in data.get("files", []):
                self.line(self._styled(attached_line(item), "dim"))
        elif kind == "continuation":
            from .run import continuation_line

            self.flush()
            self.line(self._styled(continuation_line(data), "yellow"))
        elif kind == "todos":
            from .session_commands import render_todos

            self.line(render_todos(data.get("todos", [])))
        elif kind == "compaction":
            started = data.get("state") == "start"
            self.line(
                self._styled("⚡ compacting the context…" if started else "✓ context compacted", "yellow")
            )

    def _tool_line(self, name: str, summary: str) -> Any:
        from rich.text import Text

        return Text.assemble(("• ", "cyan"), (name, "bold"), ("  " + summary if summary else "", "dim"))

    @staticmethod
    def _styled(text: str, style: str) -> Any:
        from rich.text import Text

        return Text(text, style=style)

    def line(self, renderable: Any) -> None:
        """Print one permanent line (above the live region)."""
        if self._plain_open:
            self.console.file.write("\n")
            self._plain_open = False
        self.console.print(renderable, highlight=False)

    def flush(self) -> None:
        """The current text segment is complete: print it once, as markdown."""
        text, self.text = self.text, ""
        if not text.strip():
            return
        if self.live_mode:
            from rich.markdown import Markdown

            self.console.print(Markdown(text))
        elif self._plain_open:
            self.console.file.write("\n")
            self.console.file.flush()
            self._plain_open = False

    def close(self) -> None:
        self.pause()  # first: the transient region goes away, then the final text is printed once
        self.flush()


class _LiveTail:
    """The live region: the tail of the streamed markdown, or a spinner with the status."""

    def __init__(self, view: TurnView) -> None:
        self.view = view

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.markdown import Markdown
        from rich.segment import Segment
        from rich.text import Text

        view = self.view
        text = view.text
        if text.strip():
            limit = max(3, console.size.height - 3)
            lines = console.render_lines(Markdown(live_tail(text)), options.update(height=None), pad=False)
            for line in lines[-limit:]:
                yield from line
                yield Segment.line()
            return
        status = Text(view.status, style="dim")
        if view.thinking.strip():
            status.append("  " + short(view.thinking.strip().splitlines()[-1], 70), style="dim italic")
        if view._spinner is not None:
            view._spinner.update(text=status)
            yield view._spinner
        else:
            yield status


# -------------------------------------------------------------------------------------- completer


def _make_completer(names: Callable[[], list[tuple[str, str]]]) -> Any:
    from prompt_toolkit.completion import Completer, Completion

    class SlashCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Any:
            text = document.text_before_cursor
            if not text.startswith("/") or " " in text or "\n" in text:
                return
            for name, meta in names():
                if name.startswith(text):
                    yield Completion(name, start_position=-len(text), display_meta=meta)

    return SlashCompleter()


def _key_bindings() -> Any:
    from prompt_toolkit.key_binding import KeyBindings

    kb = KeyBindings()

    # Ctrl-J is Enter too: Enter typed ahead while a turn runs (cooked mode, ICRNL) arrives as \n
    @kb.add("enter")
    @kb.add("c-j")
    def _enter(event: Any) -> None:
        buffer = event.current_buffer
        document = buffer.document
        if document.is_cursor_at_the_end and document.text.endswith("\\"):
            buffer.delete_before_cursor(1)
            buffer.insert_text("\n")
            return
        buffer.validate_and_handle()

    @kb.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    return kb


# -------------------------------------------------------------------------------------- session


class InteractiveSession:
    """One interactive terminal session on an App (attach the App after creating it)."""

    def __init__(self, console: Any = None, *, pt_input: Any = None, pt_output: Any = None) -> None:
        if console is None:
            from rich.console import Console

            console = Console(highlight=False)
        self.console = console
        # prompt_toolkit input/output for the prompt and the questions (tests pass pipe/dummy ones)
        self._pt_io = {k: v for k, v in (("input", pt_input), ("output", pt_output)) if v is not None}
        self.app: Any = None
        self.session_id: str | None = None
        self.plugin_commands: dict[str, Callable[..., Any]] = {}
        self.custom_commands: dict[str, Any] = {}  # name (no slash) -> slash_commands.catalog.CustomCommand
        self._loop: asyncio.AbstractEventLoop | None = None
        self._prompt: Any = None
        self._view: TurnView | None = None
        self._interrupt: Callable[[], None] | None = None
        self._cancel: asyncio.Event | None = None
        self._ask_lock: asyncio.Lock | None = None
        self._last_ctrl_c = 0.0
        self._terminated: int | None = None
        self._known_primary_pid: int | None = None
        self._announced_epoch: int | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._warmup: asyncio.Future | None = None

    def attach(self, app: Any) -> None:
        self.app = app

    # -- the permission asker (AppOptions.interactive_permissions) -------------------------------

    async def ask_permission(self, request: PermissionRequest) -> str:
        import questionary

        if self._ask_lock is None:
            self._ask_lock = asyncio.Lock()
        async with self._ask_lock:
            view = self._view
            if view is not None:
                view.pause()
                view.flush()
            answer: str | None = None
            try:
                self._show_request(request)
                question = questionary.select(
                    f"Allow {request.tool_name}?",
                    choices=[questionary.Choice(title, value=value) for title, value in PERMISSION_CHOICES],
                    qmark="?",
                    instruction="(↑/↓ and Enter)",
                    **self._pt_io,
                )
                answer = await question.unsafe_ask_async()
            except KeyboardInterrupt:
                answer = None
            finally:
                self._install_signal_handlers()
                if view is not None:
                    view.resume(f"running {request.tool_name}…")
            if answer is None:
                # Ctrl-C at the question: cancel the whole turn (the turn's cancellation interrupts us)
                if self._cancel is not None:
                    self._cancel.set()
                    await asyncio.sleep(5)
                return DENY
            return answer

    def _show_request(self, request: PermissionRequest) -> None:
        from rich.text import Text

        lines = str(request.description or "").splitlines() or [""]
        head = Text.assemble(
            ("⚠ ", "yellow"),
            (request.tool_name, "bold"),
            (f" wants to {request.action}: ", ""),
            (lines[0], "bold"),
        )
        self.console.print(head, highlight=False)
        body = lines[1:]
        for line in body[:DIFF_PREVIEW_LINES]:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
            self.console.print(Text("  " + line, style=style), highlight=False)
        if len(body) > DIFF_PREVIEW_LINES:
            self.console.print(Text(f"  … {len(body) - DIFF_PREVIEW_LINES} more lines", style="dim"))

    # -- signals ---------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        """(Re)install SIGINT/SIGTERM/SIGHUP handlers: prompt_toolkit drops ours after each prompt."""
        loop = self._loop
        if loop is None:
            return
        handlers: tuple[tuple[int, Callable[..., None], tuple[Any, ...]], ...] = (
            (signal.SIGINT, self._on_sigint, ()),
            (signal.SIGTERM, self._on_terminate, (signal.SIGTERM,)),
            (signal.SIGHUP, self._on_terminate, (signal.SIGHUP,)),
        )
        for sig, handler, args in handlers:
            try:
                loop.add_signal_handler(sig, handler, *args)
            except (NotImplementedError, RuntimeError, ValueError):
                pass

    def _remove_signal_handlers(self) -> None:
        loop = self._loop
        if loop is None:
            return
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass

    def _on_sigint(self) -> None:
        if self._interrupt is not None:
            self._interrupt()

    def _on_terminate(self, signum: int) -> None:
        self._terminated = signum
        if self._interrupt is not None:
            self._interrupt()
        prompt = self._prompt
        if prompt is not None and prompt.app.is_running:
            prompt.app.exit(exception=EOFError())

    # -- failover notices ------------------------------------------------------------------------

    def _notice(self, text: str, style: str = "yellow") -> None:
        from rich.text import Text

        self.console.print(Text(text, style=style), highlight=False)
        self._refresh_prompt()

    def _refresh_prompt(self) -> None:
        prompt = self._prompt
        if prompt is not None and prompt.app.is_running:
            prompt.app.invalidate()

    def _threadsafe(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closing
            pass

    def _watch_failover(self) -> None:
        app = self.app
        runtime = getattr(app, "runtime", None)
        self._known_primary_pid = getattr(runtime, "primary_pid", None) if runtime is not None else None
        self._unsubscribe.append(
            app.events.subscribe(
                "instance.promoted", lambda event: self._threadsafe(self._on_promoted, event.payload)
            )
        )
        if runtime is not None and hasattr(runtime, "on_event"):

            def on_runtime_event(event: Any) -> None:
                if getattr(event, "topic", "") in ("instance.promoted", "instance.shutdown"):
                    self._threadsafe(self._check_primary_pid)

            runtime.on_event(on_runtime_event, "instance.")

    def _on_promoted(self, payload: Any) -> None:
        epoch = (payload or {}).get("epoch") if isinstance(payload, dict) else None
        if epoch is None:
            epoch = getattr(self.app.runtime, "epoch", "?")
        self._known_primary_pid = os.getpid()
        if self._announced_epoch != epoch:
            self._announced_epoch = epoch
            self._notice(f"⚡ this instance is now the primary (epoch {epoch})")

    def _check_primary_pid(self) -> None:
        runtime = getattr(self.app, "runtime", None)
        if runtime is None:
            return
        try:
            pid = runtime.primary_pid
        except Exception:  # noqa: BLE001
            return
        if pid is None or pid == self._known_primary_pid:
            return
        old, self._known_primary_pid = self._known_primary_pid, pid
        if pid == os.getpid():
            self._on_promoted({"epoch": getattr(runtime, "epoch", None)})
        else:
            self._notice(f"primary changed: pid {old} → {pid}")

    async def _poll_primary(self) -> None:
        """Catch primary changes no event told us about; redraw the prompt when the role changes."""
        role = self.app.role
        while True:
            await asyncio.sleep(PRIMARY_POLL_S)
            self._check_primary_pid()
            if self.app.role != role:
                role = self.app.role
                self._refresh_prompt()

    async def _ensure_primary(self) -> bool:
        """Ping the primary (a secondary only); a hung one is said in one line. False: it did not answer."""
        from ..errors import PandoError

        answered = True
        try:
            await asyncio.to_thread(self.app.ensure_primary)
        except PandoError as exc:
            self._notice(f"⚠ {short(exc, 400)}", style="red")
            answered = False
        self._check_primary_pid()
        return answered

    # -- prompt ----------------------------------------------------------------------------------

    def _prompt_message(self) -> Any:
        role = self.app.role if self.app is not None else "?"
        return [("class:prompt", f"pando ({role}) › ")]

    def _command_names(self) -> list[tuple[str, str]]:
        names = [(name, text) for name, _, text in BUILTIN_COMMANDS]
        names += [(name, _doc(fn)) for name, fn in sorted(self.plugin_commands.items())]
        names += [("/" + name, command.summary()) for name, command in sorted(self.custom_commands.items())]
        return names

    def _build_prompt(self) -> Any:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
        from prompt_toolkit.completion import merge_completers
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.styles import Style

        from .mention_completion import mention_completer

        path = history_path(self.app.workdir)
        history = FileHistory(str(path)) if path is not None else InMemoryHistory()
        return PromptSession(
            message=self._prompt_message,
            multiline=True,
            key_bindings=_key_bindings(),
            history=history,
            auto_suggest=AutoSuggestFromHistory(),
            completer=merge_completers([_make_completer(self._command_names), mention_completer(self.app.workdir)]),
            complete_while_typing=True,
            prompt_continuation=lambda width, line_number, wrap_count: "… ".rjust(width),
            style=Style.from_dict({"prompt": "bold ansicyan"}),
            enable_open_in_editor=False,
            reserve_space_for_menu=4,
            **self._pt_io,
        )

    async def _read(self) -> str:
        from prompt_toolkit.patch_stdout import patch_stdout

        try:
            with patch_stdout(raw=True):
                return await self._prompt.prompt_async()
        finally:
            self._install_signal_handlers()

    # -- main loop -------------------------------------------------------------------------------

    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._install_signal_handlers()
        self._watch_failover()
        self.plugin_commands = await self._load_plugin_commands()
        self.custom_commands = await asyncio.to_thread(commands_of, self.app)
        self._prompt = self._build_prompt()
        poller = asyncio.ensure_future(self._poll_primary())
        self._warmup = asyncio.ensure_future(asyncio.to_thread(self._warm_provider))
        self._banner()
        try:
            just_checked = False  # the primary was pinged (and found silent) after the last prompt
            while self._terminated is None:
                if not just_checked:
                    await self._ensure_primary()
                just_checked = False
                try:
                    text = await self._read()
                except KeyboardInterrupt:
                    now = time.monotonic()
                    if now - self._last_ctrl_c <= DOUBLE_CTRL_C_S:
                        break
                    self._last_ctrl_c = now
                    self.console.print("[dim](press Ctrl-C again to quit, or Ctrl-D)[/dim]")
                    continue
                except EOFError:
                    break
                if self._terminated is not None:
                    break
                if not text.strip():
                    continue
                if text.lstrip().startswith("/") and _looks_like_command(text):
                    if not await self._command(text.strip()):
                        break
                    continue
                # the primary may have stopped while the user typed: never queue a turn behind
                # a write nobody will answer (the text stays in the prompt's history)
                if not await self._ensure_primary():
                    just_checked = True
                    continue
                await self._turn(text)
        finally:
            poller.cancel()
            if self._warmup is not None:
                await asyncio.wait({self._warmup}, timeout=10)
            for unsubscribe in self._unsubscribe:
                unsubscribe()
            await self.app.aclose_providers()  # inside this loop (App.shutdown would need a new one)
            self._remove_signal_handlers()
        if self.session_id:
            self.console.print(f"[dim]session {self.session_id[:8]} saved — /sessions resumes it[/dim]")
        return 128 + self._terminated if self._terminated else 0

    def _banner(self) -> None:
        from rich.markup import escape
        from rich.text import Text

        from .. import __version__
        from ..agent.models import NO_MODEL_HELP, resolve_model
        from ..errors import PandoError

        problem = None
        try:
            model = resolve_model(self.app.config, self.app.model_ref).ref
        except PandoError as exc:
            model, problem = "(none)", exc
        self.console.print(
            f"[bold]pando[/bold] {__version__} · {self.app.role} instance · model {escape(model)}\n"
            "[dim]/help for commands · Esc Enter for a new line · Ctrl-C cancels · Ctrl-D quits[/dim]",
            highlight=False,
        )
        if problem is None:
            return
        if str(problem) == NO_MODEL_HELP.rstrip():  # the how-to keeps its lines (Text: no markup)
            how_to = NO_MODEL_HELP.rstrip()
            self.console.print(Text(how_to[0].upper() + how_to[1:], style="yellow"), highlight=False)
            self.console.print(
                Text("→ set one up now: quit (Ctrl-D) and run `pando init`, or pick one here with /model PROVIDER/MODEL"),
                highlight=False,
            )
        else:
            self.console.print(Text(f"✗ {short(problem, 400)}", style="red"), highlight=False)

    def _warm_provider(self) -> None:
        """While the user types: import the provider SDK and build the client (slow the first time)."""
        from ..agent.models import resolve_model

        try:
            self.app.provider_for(resolve_model(self.app.config, self.app.model_ref))
        except Exception:  # noqa: BLE001 - the turn reports any real problem
            pass

    async def _await_warmup(self) -> None:
        """Before anything uses a provider: never two threads building the same one."""
        if self._warmup is not None:
            warmup, self._warmup = self._warmup, None
            await warmup

    # -- a turn ----------------------------------------------------------------------------------

    async def _turn(self, text: str, model_ref: str | None = None) -> None:
        from ..errors import PandoError

        app = self.app
        try:
            images = await asyncio.to_thread(self._dropped_images, text)
            if self.session_id is None:
                session = await asyncio.to_thread(app.sessions.create, title=short(text, 50))
                self.session_id = session["id"]
        except PandoError as exc:
            self.console.print(f"[red]✗ {short(exc, 400)}[/red]", highlight=False)
            return
        cancel = asyncio.Event()
        view = TurnView(self.console)
        self._cancel, self._view, self._interrupt = cancel, view, cancel.set
        result = error = None
        try:
            with _no_echo(sys.stdin):
                view.start()
                await self._await_warmup()
                result = await app.coder_agent.run(
                    self.session_id, text, model_ref=model_ref, on_event=view.on_event, cancel_event=cancel,
                    attachments=images,
                )
        except PandoError as exc:
            error = short(exc, 400)
        except Exception as exc:  # noqa: BLE001 - the session goes on
            error = f"{type(exc).__name__}: {short(exc, 400)}"
        finally:
            view.close()  # the final text first, then the error or the outcome below it
            self._cancel = self._view = self._interrupt = None
        if error is not None:
            self.console.print(f"[red]✗ error: {error}[/red]", highlight=False)
        if result is not None:
            self._report(result)
        if result is not None and result.plan:
            try:
                follow_up = await self._cancellable(session_commands.after_plan(self, result.plan))
            except KeyboardInterrupt:
                follow_up = None  # still planning; the plan is stored with the session
            except asyncio.CancelledError:
                if asyncio.current_task() is not None and asyncio.current_task().cancelling():
                    raise
                follow_up = None
            finally:
                self._install_signal_handlers()
            if follow_up:
                await self._turn(follow_up)

    def _dropped_images(self, text: str) -> list[dict[str, Any]]:
        """Image files pasted or dropped into the prompt as paths, announced as they are attached."""
        from rich.markup import escape

        from ..agent.attachments import DEFAULT_MAX_IMAGE_BYTES, dropped_image_paths

        limit = int(self.app.config.section("agent").get("max_image_bytes") or DEFAULT_MAX_IMAGE_BYTES)
        images = dropped_image_paths(text, self.app.workdir, max_bytes=limit)
        for part in images:
            data = part["data"]
            self.console.print(f"[dim]📎 image {escape(data['path'])} ({data['bytes']:,} bytes)[/dim]", highlight=False)
        return images

    def _report(self, result: Any) -> None:
        from rich.text import Text

        status = result.status
        if status == "cancelled":
            message, style = "⏹ cancelled — the partial answer is kept in the session", "yellow"
        elif status == "error":
            message, style = f"✗ error: {short(result.error, 400)}", "red"
        elif status == "permission_denied":
            message, style = "✗ permission denied — the turn stopped; tell pando how to go on", "red"
        elif status == "max_requests":
            message, style = "⚠ stopped after the maximum number of model requests for one turn", "yellow"
        else:
            return
        self.console.print(Text(message, style=style), highlight=False)

    async def _cancellable(self, awaitable: Any) -> Any:
        """Run a command's coroutine; Ctrl-C cancels it (raises CancelledError to the caller)."""
        task = asyncio.ensure_future(awaitable)
        self._interrupt = task.cancel
        try:
            return await task
        finally:
            self._interrupt = None

    # -- slash commands --------------------------------------------------------------------------

    async def _load_plugin_commands(self) -> dict[str, Callable[..., Any]]:
        commands: dict[str, Callable[..., Any]] = {}
        try:
            results = await self.app.plugins.hooks.pando_slash_commands.acall(app=self.app)
        except Exception as exc:  # noqa: BLE001
            self.console.print(f"[red]plugin slash commands failed: {short(exc)}[/red]", highlight=False)
            return commands
        builtin = {name for name, _, _ in BUILTIN_COMMANDS} | set(ALIASES)
        for mapping in results:
            if not isinstance(mapping, dict):
                continue
            for name, fn in mapping.items():
                key = "/" + str(name).lstrip("/")
                if key in builtin or not callable(fn):
                    continue
                commands.setdefault(key, fn)
        return commands

    async def _command(self, line: str) -> bool:
        """Run one slash command; False means quit."""
        name, _, args = line.partition(" ")
        name = ALIASES.get(
            name.lower(), name.lower() if name.lower() in {n for n, _, _ in BUILTIN_COMMANDS} else name
        )
        args = args.strip()
        handler = {
            "/help": self._cmd_help,
            "/new": self._cmd_new,
            "/sessions": self._cmd_sessions,
            "/model": self._cmd_model,
            "/compact": self._cmd_compact,
            "/clear": self._cmd_clear,
            "/plugins": self._cmd_plugins,
            "/status": self._cmd_status,
            "/undo": lambda args: session_commands.undo(self, args),
            "/rewind": lambda args: session_commands.rewind(self, args),
            "/plan": lambda args: session_commands.plan(self, args),
        }.get(name)
        if name == "/exit":
            return False
        if handler is None and name not in self.plugin_commands:
            self.custom_commands = await asyncio.to_thread(commands_of, self.app)  # files may have changed
            called = parse_invocation(line, self.custom_commands)
            if called is not None:
                await self._custom_command(*called)
                return True
        try:
            with _no_echo(sys.stdin):
                if handler is not None:
                    await self._cancellable(handler(args))
                elif name in self.plugin_commands:
                    await self._cancellable(self._plugin_command(name, args))
                else:
                    self.console.print(
                        f"[red]unknown command {name}[/red] — /help lists the commands", highlight=False
                    )
        except asyncio.CancelledError:
            if asyncio.current_task() is not None and asyncio.current_task().cancelling():
                raise
            self.console.print("[yellow]⏹ cancelled[/yellow]")
        except KeyboardInterrupt:
            self.console.print("[yellow]⏹ cancelled[/yellow]")
        except Exception as exc:  # noqa: BLE001 - a failing command never ends the session
            self.console.print(f"[red]✗ {name}: {short(exc, 400)}[/red]", highlight=False)
        finally:
            self._install_signal_handlers()
        return True

    async def _custom_command(self, command: Any, args: str) -> None:
        """A markdown command: its rendered prompt is one turn (its model, its allowed tools)."""
        from rich.markup import escape

        from ..errors import PandoError
        from ..slash_commands.render import GRANT_OWNER, prepare

        try:
            if self.session_id is None:
                session = await asyncio.to_thread(self.app.sessions.create, title=short(f"/{command.name} {args}", 50))
                self.session_id = session["id"]
            invocation = await prepare(self.app, self.session_id, command, args)
        except PandoError as exc:
            named = str(exc).startswith(f"/{command.name}: ")  # a refused !`cmd` names its command
            shown = short(exc, 400) if named else f"/{command.name}: {short(exc, 400)}"
            self.console.print(f"[red]✗ {escape(shown)}[/red]", highlight=False)
            return
        for note in invocation.notes:
            self.console.print(f"[yellow]⚠ /{command.name}: {note}[/yellow]", highlight=False)
        model_ref = None if self.app.options.model else (invocation.model or None)  # --model wins
        self.app.permissions.grant_temporary(self.session_id, GRANT_OWNER, invocation.grants)
        try:
            await self._turn(invocation.prompt, model_ref=model_ref)
        finally:
            self.app.permissions.revoke_temporary(self.session_id, GRANT_OWNER)

    async def _plugin_command(self, name: str, args: str) -> None:
        fn = self.plugin_commands[name]
        if inspect.iscoroutinefunction(fn):
            result = await fn(self.app, args)
        else:
            result = await asyncio.to_thread(fn, self.app, args)
            if inspect.isawaitable(result):
                result = await result
        if result:
            from rich.markdown import Markdown

            self.console.print(Markdown(str(result)))

    async def _cmd_help(self, args: str) -> None:
        def table(rows: list[tuple[str, str]]) -> Any:
            return _grid(rows, "bold cyan", (0, 2, 0, 2))

        self.console.print("[bold]Commands[/bold]")
        self.console.print(
            table([(f"{name} {usage}".strip(), text) for name, usage, text in BUILTIN_COMMANDS])
        )
        if self.plugin_commands:
            self.console.print("[bold]Plugin commands[/bold]")
            self.console.print(table([(name, _doc(fn)) for name, fn in sorted(self.plugin_commands.items())]))
        self.custom_commands = await asyncio.to_thread(commands_of, self.app)
        if self.custom_commands:
            self.console.print("[bold]Custom commands[/bold]")
            from rich.markup import escape

            rows = [
                (escape(f"/{name} {command.argument_hint}".strip()), escape(f"{command.summary()} ({command.source})"))
                for name, command in sorted(self.custom_commands.items())
            ]
            self.console.print(table(rows))
        self.console.print("[bold]Keys[/bold]")
        self.console.print(table(list(KEY_HELP)))

    async def _cmd_new(self, args: str) -> None:
        if self.session_id:
            await asyncio.to_thread(self.app.sessions.end, self.session_id)
        self.session_id = None
        self.console.print("[green]✓ new session[/green] [dim]— it is saved with your next prompt[/dim]")

    async def _cmd_sessions(self, args: str) -> None:
        import questionary

        app = self.app
        if args:
            await self._resume(args)
            return
        sessions = (await asyncio.to_thread(app.sessions.list))[:20]
        if not sessions:
            self.console.print("[dim]no saved sessions yet[/dim]")
            return
        choices = []
        for session in sessions:
            marker = " (current)" if session["id"] == self.session_id else ""
            title = (
                f"{short(session.get('title') or 'untitled', 48)}{marker} · {session.get('message_count', 0)} messages"
                f" · {_ago(session.get('updated_at'))} · {session['id'][:8]}"
            )
            choices.append(questionary.Choice(title, value=session["id"]))
        choices.append(questionary.Choice("Cancel", value=""))
        try:
            chosen = await questionary.select(
                "Resume which session?", choices=choices, qmark="?", **self._pt_io
            ).unsafe_ask_async()
        except KeyboardInterrupt:
            chosen = ""
        finally:
            self._install_signal_handlers()
        if chosen:
            await self._resume(chosen)

    async def _resume(self, id_or_prefix: str) -> None:
        from ..services.messages import text_of

        app = self.app
        session = await asyncio.to_thread(app.sessions.restore, id_or_prefix)
        if self.session_id and self.session_id != session["id"]:
            await asyncio.to_thread(app.sessions.end, self.session_id)
        self.session_id = session["id"]
        self.console.print(
            f"[green]✓ resumed[/green] {short(session.get('title') or 'untitled', 60)} "
            f"[dim]({session.get('message_count', 0)} messages · {session['id'][:8]})[/dim]",
            highlight=False,
        )
        messages = await asyncio.to_thread(app.messages.list, session["id"])
        last_user = next((m for m in reversed(messages) if m["role"] == "user"), None)
        last_answer = next(
            (m for m in reversed(messages) if m["role"] == "assistant" and text_of(m).strip()), None
        )
        if last_user is not None:
            self.console.print(f"[dim]  you: {short(text_of(last_user), 90)}[/dim]", highlight=False)
        if last_answer is not None:
            self.console.print(f"[dim]  pando: {short(text_of(last_answer), 90)}[/dim]", highlight=False)

    async def _cmd_model(self, args: str) -> None:
        from ..agent.models import resolve_model
        from ..errors import PandoError

        app = self.app
        if not args:
            try:
                current = resolve_model(app.config, app.model_ref)
                self.console.print(f"model: [bold]{current.ref}[/bold]", highlight=False)
            except PandoError as exc:
                self.console.print(f"[red]no usable model: {short(exc, 400)}[/red]", highlight=False)
            providers = app.config.section("providers") or {}
            known = [
                f"{name}/{model}"
                for name, table in providers.items()
                for model in (table.get("models") or {})
            ]
            if known:
                self.console.print("[dim]configured: " + ", ".join(known) + "[/dim]", highlight=False)
            self.console.print("[dim]switch with /model provider/model[/dim]")
            return
        try:
            resolved = resolve_model(app.config, args)
        except PandoError as exc:
            self.console.print(f"[red]✗ {short(exc, 400)}[/red]", highlight=False)
            return
        app.model_ref = resolved.ref
        self.console.print(f"[green]✓ model[/green] {resolved.ref}", highlight=False)

    async def _cmd_compact(self, args: str) -> None:
        from ..agent.compaction import compact_session
        from ..agent.models import resolve_model

        if not self.session_id:
            self.console.print("[dim]nothing to compact yet[/dim]")
            return
        resolved = resolve_model(self.app.config, self.app.model_ref)
        with self.console.status("compacting the conversation…"):
            await self._await_warmup()
            summary = await compact_session(self.app, self.session_id, resolved)
        if summary:
            self.console.print(
                f"[green]✓ compacted[/green] [dim]— summary of {len(summary)} characters replaces the history[/dim]"
            )
        else:
            self.console.print("[dim]the conversation is too short to compact[/dim]")

    async def _cmd_clear(self, args: str) -> None:
        self.console.clear()

    async def _cmd_plugins(self, args: str) -> None:
        infos = self.app.plugins.list()
        if not infos:
            self.console.print("[dim]no plugins loaded[/dim]")
            return
        for info in infos:
            version = f" {info.version}" if info.version else ""
            colour = "green" if info.status == "loaded" else "red"
            error = f" — {short(info.error, 100)}" if info.error else ""
            self.console.print(
                f"[{colour}]●[/{colour}] {info.name}{version} [dim]{info.status}{error}[/dim]", highlight=False
            )

    async def _cmd_status(self, args: str) -> None:
        from ..agent.models import resolve_model
        from ..errors import PandoError

        app = self.app
        runtime = getattr(app, "runtime", None)
        rows: list[tuple[str, str]] = [("role", app.role)]
        if runtime is not None:
            rows.append(("epoch", str(getattr(runtime, "epoch", "?"))))
        rows.append(("instance", str(app.instance_id)))
        if runtime is not None:
            pid = getattr(runtime, "primary_pid", None)
            mine = " (this process)" if pid == os.getpid() else ""
            rows.append(("primary pid", f"{pid}{mine}"))
        try:
            rows.append(("model", resolve_model(app.config, app.model_ref).ref))
        except PandoError as exc:
            rows.append(("model", f"none ({short(exc, 80)})"))
        if self.session_id:
            try:
                session = await asyncio.to_thread(app.sessions.get, self.session_id)
            except PandoError:
                session = {"id": self.session_id}
            rows.append(("session", f"{session['id']}  {short(session.get('title') or '', 50)}"))
            rows.append(
                (
                    "tokens",
                    f"{session.get('total_prompt_tokens', 0)} in · {session.get('total_completion_tokens', 0)} out"
                    f" (context {session.get('prompt_tokens', 0)})",
                )
            )
            rows.append(("cost", f"${float(session.get('cost') or 0.0):.4f}"))
        else:
            rows.append(("session", "new (saved with the first prompt)"))
            rows.append(("tokens", "0"))
            rows.append(("cost", "$0.0000"))
        rows.append(("workdir", str(app.workdir)))
        self.console.print(_grid(rows, "bold", (0, 2, 0, 0)))


def _grid(rows: list[tuple[str, str]], key_style: str, padding: tuple[int, int, int, int]) -> Any:
    """A borderless two-column table: the keys in ``key_style``, then their text."""
    from rich.table import Table

    grid = Table(box=None, show_header=False, padding=padding)
    grid.add_column(style=key_style, no_wrap=True)
    grid.add_column()
    for left, right in rows:
        grid.add_row(left, right)
    return grid


def _doc(fn: Any) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.strip().splitlines()[0] if doc.strip() else "plugin command"


def _looks_like_command(text: str) -> bool:
    """``/status`` is a command; ``/usr/bin/env is broken`` is a prompt."""
    word = text.strip().split(maxsplit=1)[0]
    return "/" not in word[1:] and "\n" not in text.strip()


# ------------------------------------------------------------------------------------ entry points


def run_interactive(context: Any, *, yolo: bool = False, model: str | None = None) -> int:
    from ..app import App, AppOptions

    ui = InteractiveSession()
    options = AppOptions(
        startup_mode="interactive", yolo=yolo, model=model, interactive_permissions=ui.ask_permission
    )
    with App.running(context, options) as app:
        ui.attach(app)
        try:
            return asyncio.run(ui.run())
        finally:
            if ui.session_id:
                app.sessions.end(ui.session_id)


def _isatty(stream: Any) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def main(
    context: Any,
    *,
    show_help: Callable[[], None] | None = None,
    yolo: bool = False,
    model: str | None = None,
) -> int:
    """Bare ``pando``: the interactive session, or one piped prompt when stdin is not a terminal."""
    if not _isatty(sys.stdin):
        prompt = sys.stdin.read() if sys.stdin is not None else ""
        if not prompt.strip():
            if show_help is not None:
                show_help()
            return 0
        from ..commands.run_cmd import run_prompt

        return run_prompt(prompt, yolo=yolo, model=model, context=context)
    return run_interactive(context, yolo=yolo, model=model)
