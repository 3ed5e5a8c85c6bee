"""Failover notices in the interactive session: one line when this instance is promoted or the
primary changes, and a ping of the primary before each prompt."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from ..errors import one_line as short

PRIMARY_POLL_S = 0.5


class FailoverNoticesMixin:
    """Watches the primary for an InteractiveSession and says in one line when it changes."""

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
