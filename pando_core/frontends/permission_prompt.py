"""Asking the user for a tool permission in the interactive session: the request (with a diff
preview) and a once / session / always / deny question."""

from __future__ import annotations

import asyncio

from ..agent.tools.base import PermissionRequest
from ..services.permissions import ALLOW_ALWAYS, ALLOW_ONCE, ALLOW_SESSION, DENY

PERMISSION_CHOICES = (
    ("Allow once", ALLOW_ONCE),
    ("Allow for this session", ALLOW_SESSION),
    ("Always allow", ALLOW_ALWAYS),
    ("Deny", DENY),
)
DIFF_PREVIEW_LINES = 16


class PermissionPromptMixin:
    """The permission asker of an InteractiveSession (AppOptions.interactive_permissions)."""

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
