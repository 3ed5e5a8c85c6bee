"""Tool permissions: config allow-lists, --yolo, per-session and persisted grants, interactive asks.

Decision order for one request:
  1. a ``deny_bash`` pattern refuses: it is matched against the whole command and against each
     simple command in it, with and without wrappers (`cd x && cat .env` is refused by `cat *`,
     `timeout 5 rm x` by `rm *`), and it wins over everything below and over the bash tool's
     read-only check (the tool asks whenever :meth:`PermissionService.denies` says so);
  2. ``--yolo`` allows;
  3. config ``allow_tools`` / ``allow_bash`` allow;
  4. a temporary grant (a PreToolUse hook's "allow" for one call, a custom command's
     ``allowed-tools`` for its turn), a grant for this session, or a persisted "always" grant, allows;
  5. otherwise the interactive asker decides (once / session / always / deny); with no asker
     (non-interactive runs) the request is denied and recorded so the run can report it.

:meth:`PermissionService.confirm` (a PreToolUse hook's "ask") keeps 1 and goes straight to 5.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..agent.tools import command_patterns
from ..agent.tools.base import PermissionRequest

ALLOW_ONCE = "once"
ALLOW_SESSION = "session"
ALLOW_ALWAYS = "always"
DENY = "deny"

Asker = Callable[[PermissionRequest], Awaitable[str]]


@dataclass
class Denial:
    session_id: str
    tool_name: str
    action: str
    description: str

    def as_dict(self) -> dict[str, str]:
        return {"tool": self.tool_name, "action": self.action, "description": self.description}


@dataclass
class _Grant:
    tool_name: str
    action: str
    pattern: str

    def matches(self, request: PermissionRequest) -> bool:
        if self.tool_name != request.tool_name or self.action != request.action:
            return False
        return fnmatch.fnmatchcase(_subject(request), self.pattern)


def _subject(request: PermissionRequest) -> str:
    if request.tool_name == "bash":
        return str(request.params.get("command", request.description))
    return request.path or request.description


@dataclass
class PermissionService:
    config: dict[str, Any]
    store: Any = None
    yolo: bool = False
    asker: Asker | None = None
    denials: list[Denial] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._session_grants: dict[str, list[_Grant]] = {}
        self._temporary: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (session, owner) -> (tool, pattern)
        self._lock = threading.Lock()

    def grant_session(self, session_id: str, tool_name: str, action: str, pattern: str = "*") -> None:
        with self._lock:
            self._session_grants.setdefault(session_id, []).append(_Grant(tool_name, action, pattern))

    def grant_temporary(self, session_id: str, owner: str, grants: list[tuple[str, str]]) -> None:
        """Allow ``(tool name, pattern)`` pairs (the pattern is matched against a bash command or a
        path, fnmatch) until :meth:`revoke_temporary` with the same *owner*; deny rules still refuse."""
        with self._lock:
            self._temporary.setdefault((session_id, owner), []).extend(grants)

    def revoke_temporary(self, session_id: str, owner: str) -> None:
        with self._lock:
            self._temporary.pop((session_id, owner), None)

    def _temporarily_granted(self, session_id: str, request: PermissionRequest) -> bool:
        with self._lock:
            grants = [g for (sid, _), pairs in self._temporary.items() if sid == session_id for g in pairs]
        subject = _subject(request)
        if request.tool_name == "bash":
            return any(tool == "bash" and bash_grant_matches(subject, pattern) for tool, pattern in grants)
        return any(tool == request.tool_name and fnmatch.fnmatchcase(subject, pattern) for tool, pattern in grants)

    def _persisted(self) -> list[_Grant]:
        if self.store is None:
            return []
        try:
            rows = self.store.permission_grants.list()
        except Exception:  # noqa: BLE001 - a missing table must not block asking
            return []
        return [_Grant(r["tool_name"], r["action"], r["pattern"]) for r in rows]

    def _bash_matches(self, request: PermissionRequest, key: str) -> bool:
        """A bash request whose command matches one of the config ``key`` patterns (fnmatch, or
        Claude Code's ``prefix:*``: see :mod:`command_patterns`)."""
        if request.tool_name != "bash":
            return False
        command = str(request.params.get("command", ""))
        return command_patterns.matches_any(command, self.config.get(key) or [])

    def denies(self, request: PermissionRequest) -> bool:
        """True when a ``deny_bash`` pattern matches the command or any simple command in it."""
        if request.tool_name != "bash":
            return False
        patterns = self.config.get("deny_bash") or []
        if not patterns:
            return False
        from ..agent.tools.shell_safety import command_texts

        texts = command_texts(str(request.params.get("command", request.description)))
        return any(command_patterns.matches_any(text, patterns) for text in texts)

    def _config_allows(self, request: PermissionRequest) -> bool:
        return request.tool_name in (self.config.get("allow_tools") or []) or self._bash_matches(request, "allow_bash")

    def _granted(self, session_id: str, request: PermissionRequest) -> bool:
        """A grant for this session, else a persisted "always" grant (the store is read only then)."""
        with self._lock:
            grants = list(self._session_grants.get(session_id, []))
        return any(g.matches(request) for g in grants) or any(g.matches(request) for g in self._persisted())

    def decide_unasked(self, session_id: str, request: PermissionRequest) -> str:
        """What the rules alone say: "deny", "allow", or "ask" (the asker would decide; with none,
        a refusal). Records nothing."""
        if self.denies(request):
            return "deny"
        if self.yolo or self._config_allows(request) or self._temporarily_granted(session_id, request):
            return "allow"
        return "allow" if self._granted(session_id, request) else "ask"

    async def request(self, session_id: str, request: PermissionRequest) -> bool:
        decision = self.decide_unasked(session_id, request)
        if decision == "deny":
            return self._record(session_id, request, False)
        if decision == "allow":
            return True
        return await self._ask(session_id, request)

    async def confirm(self, session_id: str, request: PermissionRequest) -> bool:
        """Ask the user whatever would allow the request (``--yolo``, allow rules, grants, a read-only
        command): a PreToolUse hook's "ask". Deny rules still refuse; with no asker it is refused."""
        if self.denies(request):
            return self._record(session_id, request, False)
        return await self._ask(session_id, request)

    async def _ask(self, session_id: str, request: PermissionRequest) -> bool:
        if self.asker is None:
            return self._record(session_id, request, False)
        answer = await self.asker(request)
        if answer == ALLOW_SESSION:
            self.grant_session(session_id, request.tool_name, request.action, _grant_pattern(request))
        elif answer == ALLOW_ALWAYS and self.store is not None:
            self.store.permission_grants.add(
                tool_name=request.tool_name, action=request.action, pattern=_grant_pattern(request)
            )
        return self._record(session_id, request, answer in (ALLOW_ONCE, ALLOW_SESSION, ALLOW_ALWAYS))

    def _record(self, session_id: str, request: PermissionRequest, allowed: bool) -> bool:
        if not allowed:
            self.denials.append(Denial(session_id, request.tool_name, request.action, request.description))
        return allowed


_SHELL_OPERATORS = frozenset(";&|<>$`()\n\\")


def bash_grant_matches(command: str, pattern: str) -> bool:
    """A temporary bash grant (``git add*``) covers one plain command only: ``git add . && rm -rf x``
    or ``git add $(…)`` are not ``git add`` and are left to the other rules. ``*`` covers anything."""
    if pattern == "*":
        return True
    return not (_SHELL_OPERATORS & set(command)) and command_patterns.matches(command.strip(), pattern)


def _grant_pattern(request: PermissionRequest) -> str:
    """What a session/always grant covers: the exact bash command (its ``*``, ``?`` and ``[`` taken
    literally: allowing ``rm *.log`` must not allow ``rm -rf src x.log``), or the whole tool action."""
    if request.tool_name == "bash":
        return _literal_pattern(str(request.params.get("command", "*")))
    return "*"


def _literal_pattern(text: str) -> str:
    """An fnmatch pattern that matches *text* only."""
    return "".join(f"[{char}]" if char in "*?[" else char for char in text)
