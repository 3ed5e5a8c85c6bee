"""Session service: the store's sessions plus events and plugin hooks."""

from __future__ import annotations

from typing import Any

from ..background import ThreadedService
from ..clock import now_ms
from ..errors import NotFoundError, ValidationError, one_line

TITLE_LIMIT = 200  # characters; a prompt's first 50 make the first title


class SessionService:
    def __init__(self, app: Any) -> None:
        self.app = app

    @property
    def _repo(self):
        return self.app.store.sessions

    def create(self, title: str = "New session", parent_session_id: str | None = None, id: str | None = None) -> dict:
        session = self._repo.create(title=one_line_title(title), parent_session_id=parent_session_id, id=id)
        self.app.events.publish("session.created", session)
        if parent_session_id is None:
            self.app.take_snapshot("session start", session["id"])
            self.app.plugins.hooks.pando_session_created(app=self.app, session=session)
        return session

    def get(self, id: str) -> dict:
        return self._repo.get(id=id)

    def find(self, id_or_prefix: str) -> dict:
        try:
            return self._repo.get(id=id_or_prefix)
        except NotFoundError:
            return self._repo.find(id_prefix=id_or_prefix)

    def restore(self, id_or_prefix: str) -> dict:
        """Load an existing session to continue it (fires ``pando_session_restored``)."""
        session = self.find(id_or_prefix)
        self.app.plugins.hooks.pando_session_restored(app=self.app, session=session)
        return session

    def latest(self) -> dict | None:
        return self._repo.latest()

    def list(
        self, include_children: bool = False, include_empty: bool = False, limit: int = 1000, offset: int = 0
    ) -> list[dict]:
        return self._repo.list(include_children=include_children, include_empty=include_empty, limit=limit, offset=offset)

    def rename(self, id: str, title: str) -> dict:
        session = self._repo.update(id=id, title=one_line_title(title))
        self.app.events.publish("session.updated", session)
        return session

    def end(self, id: str) -> bool:
        """The session is over for now (end of a run, /new, leaving the interactive session, idle).

        Recorded in the store, so the primary hears of it whichever instance ended it; the hook
        fires here only when this ends a stretch of activity (a session is not ended twice without
        being used in between). True when it did."""
        try:
            outcome = self._repo.end(id=id)
        except NotFoundError:
            return False
        if not outcome["ended"]:
            return False
        session = outcome["session"]
        if session.get("parent_session_id") is None:
            self.app.take_snapshot("session end", session["id"])
        self.app.events.publish("session.ended", session)
        self.app.plugins.hooks.pando_session_ended(app=self.app, session=session, origin=self.app.instance_id)
        return True

    def bus_methods(self) -> dict[str, Any]:
        """What the primary serves other instances about sessions (``app.call_primary``)."""

        def session_list(params: dict) -> list:
            return self.list(include_empty=bool(params.get("include_empty", False)))

        def session_get(params: dict) -> dict:
            session_id = params.get("id")
            if not isinstance(session_id, str):
                raise ValidationError("session.get: id must be a string")
            return self.get(session_id)  # NotFoundError: answered with its kind

        return {"session.list": session_list, "session.get": session_get}

    def delete(self, id: str) -> None:
        self._repo.delete(id=id)
        self.app.events.publish("session.deleted", {"id": id})



class IdleSessionSweeper(ThreadedService):
    """The primary's sweep that ends sessions nobody touched for ``[agent] idle_minutes``: those of
    a terminal left open, and those of an instance that died before it could end them."""

    name = "core.idle-sessions"
    plugin = "core"

    def __init__(self, idle_minutes: float) -> None:
        self.idle_ms = int(idle_minutes * 60_000)
        self.interval = max(0.2, min(60.0, idle_minutes * 60 / 4))

    def run(self, app: Any, stop: Any) -> None:
        while not stop.wait(self.interval):
            for session in app.store.sessions.idle(before=now_ms() - self.idle_ms):
                if stop.is_set():
                    return
                if not app.coder_agent.is_busy(session["id"]):
                    app.sessions.end(session["id"])


def one_line_title(title: str, limit: int = TITLE_LIMIT) -> str:
    """A session title is one line (a piped prompt's newlines and tabs become spaces)."""
    return one_line(title, limit) or "New session"
