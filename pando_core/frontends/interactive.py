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
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from ..errors import one_line as short
from ..slash_commands.render import commands_of
from . import session_commands
from .failover_notices import FailoverNoticesMixin
from .interactive_commands import BUILTIN_COMMANDS, SlashCommandsMixin, _doc, _looks_like_command
from .permission_prompt import PermissionPromptMixin
from .prompt_input import _key_bindings, _make_completer, _no_echo, history_path
from .turn_view import TurnView

DOUBLE_CTRL_C_S = 2.0


# -------------------------------------------------------------------------------------- session


class InteractiveSession(PermissionPromptMixin, FailoverNoticesMixin, SlashCommandsMixin):
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
