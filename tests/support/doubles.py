"""Small real collaborators for tool tests."""

from __future__ import annotations

from pando_core.agent.tools.base import PermissionRequest


class Asker:
    """A tiny real PermissionAsker: records every request and answers it.

    ``answers`` are given to the first requests, in order; once they are used up (or when none
    are given) every request gets ``answer``.
    """

    def __init__(self, answer: bool = True, *, answers: list[bool] | None = None) -> None:
        self.answer = answer
        self.answers = list(answers or [])
        self.requests: list[PermissionRequest] = []

    async def request(self, session_id: str, request: PermissionRequest) -> bool:
        self.requests.append(request)
        return self.answers.pop(0) if self.answers else self.answer


class History:
    """A tiny real file-history recorder: ``changes`` holds ``(session_id, path, before, after)``."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str, str | None, str]] = []

    def record_change(self, session_id: str, path: str, before: str | None, after: str) -> None:
        self.changes.append((session_id, path, before, after))
