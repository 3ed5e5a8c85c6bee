"""How one turn's agent events look in the terminal: the streamed answer in a transient live
region, printed once as markdown, and one line per tool call and result."""

from __future__ import annotations

import json
from typing import Any

from ..errors import one_line as short

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
