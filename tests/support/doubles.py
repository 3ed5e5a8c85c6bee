"""Small real collaborators for tool tests."""

from __future__ import annotations

from pando_core.agent.tools.base import PermissionRequest


class Asker:
    """A tiny real PermissionAsker: records every request and answers with ``answer``."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.requests: list[PermissionRequest] = []

    async def request(self, session_id: str, request: PermissionRequest) -> bool:
        self.requests.append(request)
        return self.answer
