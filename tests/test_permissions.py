"""The permission decision order: deny patterns, --yolo, config allow-lists, grants, the asker."""

from __future__ import annotations

import asyncio

from pando_core.agent.tools.base import PermissionRequest
from pando_core.services.permissions import ALLOW_ALWAYS, ALLOW_SESSION, PermissionService


class GrantStore:
    """A tiny store of persisted grants that counts how often it is read."""

    def __init__(self, rows: list[dict] | None = None) -> None:
        self.permission_grants = self
        self.rows = list(rows or [])
        self.reads = 0

    def list(self) -> list[dict]:
        self.reads += 1
        return list(self.rows)

    def add(self, *, tool_name: str, action: str, pattern: str) -> None:
        self.rows.append({"tool_name": tool_name, "action": action, "pattern": pattern})


def bash(command: str) -> PermissionRequest:
    return PermissionRequest(tool_name="bash", action="execute", description=command, params={"command": command})


def write(path: str) -> PermissionRequest:
    return PermissionRequest(tool_name="write", action="write", description=path, path=path)


def decide(service: PermissionService, request: PermissionRequest, session_id: str = "s1") -> bool:
    return asyncio.run(service.request(session_id, request))


def test_deny_patterns_win_over_yolo_and_allow_patterns():
    config = {"allow_bash": ["git *"], "deny_bash": ["git push*"]}
    service = PermissionService(config, yolo=True)
    assert decide(service, bash("git status"))
    assert not decide(service, bash("git push origin main"))
    assert [d.description for d in service.denials] == ["git push origin main"]
    plain = PermissionService(config)
    assert decide(plain, bash("git log"))
    assert not decide(plain, bash("ls"))  # no asker: denied and recorded
    assert not decide(PermissionService({"allow_bash": ["write"]}), write("a.txt"))  # bash patterns only
    assert decide(PermissionService({"allow_tools": ["write"]}), write("a.txt"))


def test_a_session_grant_is_checked_before_the_persisted_grants_are_read():
    store = GrantStore()
    service = PermissionService({}, store)
    service.grant_session("s1", "bash", "execute", "make *")
    assert decide(service, bash("make test"))
    assert store.reads == 0
    assert not decide(service, bash("make test"), session_id="s2")  # another session: not granted
    assert store.reads == 1


def test_persisted_and_session_answers_of_the_asker():
    store = GrantStore([{"tool_name": "write", "action": "write", "pattern": "*"}])
    asked = []

    async def asker(request: PermissionRequest) -> str:
        asked.append(request.description)
        return ALLOW_SESSION

    service = PermissionService({}, store, asker=asker)
    assert decide(service, write("a.txt"))  # a persisted "always" grant
    assert decide(service, bash("make")) and decide(service, bash("make"))
    assert asked == ["make"]  # the second time the session grant answered


def test_a_granted_command_with_glob_characters_covers_that_command_only():
    store = GrantStore()

    async def asker(request: PermissionRequest) -> str:
        return ALLOW_ALWAYS if "always" in request.description else ALLOW_SESSION

    service = PermissionService({}, store, asker=asker)
    assert decide(service, bash("rm *.log"))
    assert decide(service, bash("rm *.log"))  # the session grant
    service.asker = None  # from now on only the grants allow
    assert decide(service, bash("rm *.log"))
    for other in ("rm -rf src x.log", "rm a.log", "rm ?.log"):
        assert not decide(service, bash(other)), other
    service.asker = asker
    assert decide(service, bash("ls [ab]*.txt # always"))
    assert store.rows[0]["pattern"] != "ls [ab]*.txt # always"
    assert decide(PermissionService({}, store), bash("ls [ab]*.txt # always"))
    assert not decide(PermissionService({}, store), bash("ls a.txt # always"))
