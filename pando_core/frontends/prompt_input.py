"""The interactive prompt's input: its history file, its key bindings, slash-command completion, and
no echo of type-ahead while a turn runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


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
