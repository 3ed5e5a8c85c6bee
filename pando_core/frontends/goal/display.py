"""How ``pando goal`` shows a run: streamed answers, progress lines on a terminal, the outcome."""

from __future__ import annotations

import json
from typing import Any, TextIO

from ...errors import one_line
from ..run import EventPrinter, Spinner


class GoalView:
    """Streams agent events (text / stream-json), progress lines on a TTY, and the final output."""

    def __init__(self, output_format: str, quiet: bool, out: TextIO, err: TextIO) -> None:
        self.format = output_format
        self.quiet = quiet
        self.out = out
        self.err = err
        self.printer = EventPrinter(output_format, quiet, out, err)
        self.tty = self.printer.tty  # stderr is a terminal and not --quiet
        self.printer.spinner = None  # one spinner per iteration, see on_progress
        self.spinner = None
        self.streamed = False  # any text streamed at all
        self.iteration_text = False  # text streamed in the current iteration
        self.last_char = "\n"

    # -- agent events ------------------------------------------------------------------------------

    def on_event(self, event: Any) -> None:
        if event.type == "content_delta" and self.format == "text":
            self.stop_spinner()
            if not self.iteration_text and self.streamed:
                self.out.write("\n" if self.last_char == "\n" else "\n\n")
            self.iteration_text = True
            self.streamed = True
            delta = event.data.get("delta", "")
            if delta:
                self.last_char = delta[-1]
        self.printer(event)

    # -- goal progress -----------------------------------------------------------------------------

    def on_progress(self, info: Any) -> None:
        if info.kind == "started":
            if self.format == "stream-json":
                self._json_line(
                    {
                        "type": "goal_started",
                        "session_id": info.session_id,
                        "objective": info.objective,
                        "iteration": info.iteration,
                        "max_iterations": info.max_iterations,
                        "resumed": info.resumed,
                    }
                )
            if self.tty:
                verb = "resumed" if info.resumed else "started"
                self.err.write(f"Goal {verb}: {info.objective}\n")
                self.err.flush()
        elif info.kind == "iteration_start":
            self.iteration_text = False
            if self.tty and self.format == "text":
                self.stop_spinner()
                self.spinner = Spinner(self.err)
                self.spinner.label = f"goal iteration {info.iteration + 1}/{info.max_iterations}"
                self.printer.spinner = self.spinner
                self.spinner.start()
        elif info.kind == "iteration":
            self.stop_spinner()
            if self.format == "stream-json":
                self._json_line(
                    {
                        "type": "goal_iteration",
                        "session_id": info.session_id,
                        "iteration": info.iteration,
                        "max_iterations": info.max_iterations,
                        "elapsed_seconds": round(info.elapsed, 3),
                        "status": info.status,
                        "progress": info.progress,
                        "next_step": info.next_step,
                        "blocked_reason": info.blocked_reason,
                    }
                )
            if self.tty:
                if self.format == "text" and self.iteration_text and self.last_char != "\n":
                    self.out.write("\n")
                    self.out.flush()
                    self.last_char = "\n"
                progress = one_line(info.progress or info.next_step or "no progress reported", 160)
                self.err.write(
                    f"iteration {info.iteration}/{info.max_iterations}, elapsed {int(info.elapsed)}s: {progress}\n"
                )
                self.err.flush()

    def stop_spinner(self) -> None:
        if self.spinner is not None:
            self.spinner.stop()
            self.spinner = None
            self.printer.spinner = None

    # -- the outcome -------------------------------------------------------------------------------

    def finish(self, result: Any) -> None:
        self.stop_spinner()
        data = result.as_json()
        if self.format == "json":
            self.out.write(json.dumps(data, indent=2) + "\n")
        elif self.format == "stream-json":
            self._json_line({"type": "result", **data})
        else:
            if self.streamed:
                if self.last_char != "\n":
                    self.out.write("\n")
            else:
                text = result.response or result.progress or result.blocked_reason or "No content available"
                self.out.write(text if text.endswith("\n") else text + "\n")
            if not self.quiet:
                self._summary(result)
        self.out.flush()
        self.err.flush()

    def _summary(self, result: Any) -> None:
        if result.status == "completed":
            self.err.write("Goal completed.\n")
        else:
            self.err.write(f"Goal finished with status: {result.status}\n")
        self.err.write(
            f"Session: {result.session_id} (iteration {result.iteration}/{result.max_iterations})\n"
        )
        if result.progress:
            self.err.write(f"Progress: {one_line(result.progress, 300)}\n")
        if result.blocked_reason and result.blocked_reason != result.progress:
            self.err.write(f"Reason: {one_line(result.blocked_reason, 300)}\n")
        if result.next_step:
            self.err.write(f"Next step: {one_line(result.next_step, 300)}\n")
        if result.status != "completed":
            self.err.write(f"Resume with: pando goal --resume {result.session_id[:8]}\n")

    def _json_line(self, data: dict) -> None:
        self.out.write(json.dumps(data) + "\n")
        self.out.flush()
