"""The rag service: the primary's owner of the store.

The core runs it on the primary only — at start and after a promotion — and stops it on shutdown
or fencing.  It opens the engine (chroma, catalog, embedder), imports the knowledge-base folder,
watches it (watchfiles, 250 ms debounce) and re-indexes sessions when they have been quiet for
``[rag] session_debounce`` seconds.  Every other part of the plugin reaches the engine through
the ``rag.*`` bus methods (api.py), from any instance.

A short-lived ``pando rag ...`` command that finds no pando running becomes the primary itself:
its service then opens the store for that one command and neither imports nor watches.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from pando_core.background import ThreadedService
from pando_core.errors import UnavailableError, one_line

from .config import RagConfig
from .memory import SessionDebouncer

log = logging.getLogger("pando.rag")

SERVICE_NAME = "rag"
# startup modes of commands that only need the store for one request
OPEN_TIMEOUT = 60.0
MESSAGE_CACHE = 4096


class RagService(ThreadedService):
    name = SERVICE_NAME

    def __init__(self, config: RagConfig | None = None) -> None:
        super().__init__()
        self.engine = None
        self.error: str | None = None
        self.opened = threading.Event()
        self.watching: str | None = None
        self.watch_error: str | None = None
        self.last_sync: dict | None = None
        # made now, not when the store has opened: sessions changed while it opens (the embedder
        # loads for seconds) are kept and indexed once it is open
        self.debouncer: SessionDebouncer | None = (
            SessionDebouncer(config.session_debounce) if config is not None and config.auto_index_sessions else None
        )
        self._app = None
        self._message_sessions: dict[str, str] = {}

    # -- for the bus methods ------------------------------------------------------------------

    def ready_engine(self, timeout: float = OPEN_TIMEOUT):  # noqa: ANN201
        if not self.opened.wait(timeout):
            raise UnavailableError("the rag store is still opening on the primary; try again")
        if self.engine is None:
            raise UnavailableError(f"the rag store could not be opened: {self.error or 'it was closed'}")
        return self.engine

    def health(self) -> dict | None:
        state: dict[str, Any] = {"open": self.engine is not None}
        if self.error:
            state["error"] = self.error
        state["watching"] = self.watching
        if self.debouncer is not None:
            state["sessions_pending"] = self.debouncer.pending()
        return state

    def session_of_message(self, app: Any, message_id: str) -> str | None:
        """The session of a message (remembered: a streamed message changes many times)."""
        session_id = self._message_sessions.get(message_id)
        if session_id is None:
            try:
                session_id = app.store.messages.get(id=message_id)["session_id"]
            except Exception:  # noqa: BLE001 - deleted since: nothing to index
                return None
            if len(self._message_sessions) >= MESSAGE_CACHE:
                self._message_sessions.pop(next(iter(self._message_sessions)))
            self._message_sessions[message_id] = session_id
        return session_id

    def session_changed(self, session_id: str, *, now: bool = False) -> None:
        if self.debouncer is not None:
            self.debouncer.touch(session_id, 0.0 if now else None)

    # -- the thread ---------------------------------------------------------------------------

    def run(self, app: Any, stop: threading.Event) -> None:
        from .engine import RagEngine

        self._app = app
        # the core may run the same instance again after a promotion: start from a clean state
        self.opened.clear()
        self.error = self.watch_error = None
        config = RagConfig.from_app(app)
        try:
            self.engine = RagEngine(config, Path(app.data_dir("rag")))
        except Exception as exc:  # noqa: BLE001 - reported by every call and by `pando status`
            self.error = one_line(exc, 300)
            log.warning("rag: the store could not be opened: %s", self.error)
            self.opened.set()
            return
        if not config.auto_index_sessions:
            self.debouncer = None
        elif self.debouncer is None:
            self.debouncer = SessionDebouncer(config.session_debounce)
        try:
            if removed := self.engine.reconcile():
                log.info("rag: removed vectors left without a catalog row: %s", removed)
        except Exception as exc:  # noqa: BLE001 - serving goes on; status shows the counts
            log.warning("rag: checking the store failed: %s", one_line(exc))
        self.opened.set()
        try:
            long_lived = app.runs_background_work
            if long_lived:
                config.kb_path.mkdir(parents=True, exist_ok=True)
            if long_lived and config.kb_auto_import and config.kb_path.is_dir():
                self._initial_import(stop)
            if long_lived and config.kb_watch and config.kb_path.is_dir():
                self._watch(config.kb_path, stop)
            else:
                self._idle(stop)
        finally:
            engine, self.engine = self.engine, None
            self.watching = None
            engine.close()

    def _initial_import(self, stop: threading.Event) -> None:
        try:
            self.last_sync = self.engine.kb.sync_directory(delete_missing=True, stop=stop.is_set)
            self._publish("rag.kb.sync_finished", self.last_sync)
        except Exception as exc:  # noqa: BLE001 - the service goes on without it
            log.warning("rag: importing %s failed: %s", self.engine.config.kb_path, one_line(exc))

    def _publish(self, topic: str, payload: dict) -> None:
        try:
            self._app.events.publish(topic, payload)
        except Exception:  # noqa: BLE001 - an event is best effort
            log.debug("rag: publishing %s failed", topic, exc_info=True)

    def _idle(self, stop: threading.Event) -> None:
        while not stop.is_set():
            wait = self.debouncer.next_in() if self.debouncer else None
            if self.debouncer is not None:
                self.debouncer.wakeup.wait(0.5 if wait is None else min(wait, 0.5))
                self.debouncer.wakeup.clear()
            else:
                stop.wait(0.5)
            self._flush_sessions()

    def _watch(self, root: Path, stop: threading.Event) -> None:
        from .watcher import watch_folder

        self.watching = str(root.resolve())
        try:
            watch_folder(self.engine.kb, root, stop, self._flush_sessions, lambda path, outcome: self._publish("rag.kb.file_synced", {"path": path, "outcome": outcome}))
        except Exception as exc:  # noqa: BLE001 - e.g. the folder was removed; the service keeps serving
            self.watch_error = one_line(exc)
            log.warning("rag: watching %s stopped: %s", root, self.watch_error)
        self.watching = None
        self._idle(stop)

    def _flush_sessions(self) -> None:
        if self.debouncer is None:
            return
        for session_id in self.debouncer.pop_due():
            try:
                self.index_session(session_id)
            except Exception as exc:  # noqa: BLE001 - the next change tries again
                log.warning("rag: indexing session %s failed: %s", session_id, one_line(exc))

    def index_session(self, session_id: str) -> dict | None:
        from pando_core.errors import NotFoundError

        store = self._app.store
        try:
            session = store.sessions.get(id=session_id)
        except NotFoundError:
            self.engine.events.delete(f"session-{session_id}")
            return None
        messages = store.messages.list(session_id=session_id)
        return self.engine.events.index_session(session, messages)
