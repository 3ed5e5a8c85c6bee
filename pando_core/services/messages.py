"""Message service: stored messages with their parts, plus events and plugin hooks."""

from __future__ import annotations

from typing import Any


def text_of(message: dict) -> str:
    """The concatenated text parts of a message."""
    return "".join(p["data"].get("text", "") for p in message.get("parts", []) if p.get("type") == "text")


class MessageService:
    def __init__(self, app: Any) -> None:
        self.app = app

    @property
    def _repo(self):
        return self.app.store.messages

    def create(self, session_id: str, role: str, parts: list[dict], model: str | None = None) -> dict:
        message = self._repo.create(session_id=session_id, role=role, parts=parts, model=model)
        self._announce(message)
        return message

    def create_many(self, session_id: str, messages: list[dict]) -> list[dict]:
        """Several messages (``role``, ``parts``, ``model``), stored in order through a write
        pipeline -- from a secondary, 16 per round trip instead of one -- then each announced as
        :meth:`create` does. If any write fails, the others still go and the first failure is
        raised once all are sent; then none is announced."""
        with self.app.store.pipeline() as pipe:
            pending = [
                pipe.messages.create(
                    session_id=session_id, role=m["role"], parts=m.get("parts", []), model=m.get("model")
                )
                for m in messages
            ]
        created = [p.result() for p in pending]
        for message in created:
            self._announce(message)
        return created

    def _announce(self, message: dict) -> None:
        """A new message: the ``message.created`` event, then the plugin hook."""
        self.app.events.publish("message.created", message)
        self.app.plugins.hooks.pando_message_created(app=self.app, message=message)

    def update(self, message_id: str, parts: list[dict], model: str | None = None) -> dict:
        message = self._repo.update(id=message_id, parts=parts, model=model)
        self.app.events.publish("message.updated", message)
        return message

    def delete_from(self, session_id: str, message_id: str) -> list[str]:
        """Delete ``message_id`` and every later message of the session (a rewound conversation)."""
        deleted = self._repo.delete_from(session_id=session_id, message_id=message_id)
        for deleted_id in deleted:
            self.app.events.publish("message.deleted", {"id": deleted_id, "session_id": session_id})
        return deleted

    def list(self, session_id: str) -> list[dict]:
        return self._repo.list(session_id=session_id)

    def bus_methods(self) -> dict:
        """What the primary serves other instances about messages (``app.call_primary``)."""

        def message_list(params: dict) -> list:
            session_id = params.get("session_id")
            if not isinstance(session_id, str):
                from ..errors import ValidationError

                raise ValidationError("message.list: session_id must be a string")
            return self.list(session_id)

        return {"message.list": message_list}

    def get(self, message_id: str) -> dict:
        return self._repo.get(id=message_id)
