"""The core's shell-hooks plugin: each Claude Code hook event on the pando plugin hook that runs at
that point.

    PreToolUse        pando_before_tool_call   exit 2 / "deny" refuse the call (the reason goes to the
                                               model), "allow" skips the permission question (deny
                                               rules still refuse), "ask" asks it whatever rules,
                                               --yolo or grants allow (refused where nobody can be
                                               asked), updatedInput replaces the arguments
    PostToolUse       pando_after_tool_call    exit 2's stderr, a "block" reason or additionalContext
                                               are added to the result the model reads
    UserPromptSubmit  pando_enrich_context     exit 2 / "block" refuse the prompt (nothing is sent or
                                               stored); plain stdout or additionalContext is added to it
    Stop              pando_turn_stopping      after a turn that ended well: exit 2 (its stderr) or
                                               "decision": "block" (its reason) make the agent run
                                               another turn with that text as the prompt; the next
                                               call has "stop_hook_active": true

(UserPromptSubmit and Stop are the user's turns only, not a sub-agent's; tool hooks see every call.)
    SessionStart      pando_session_created /  stdout or additionalContext is added to the session's
                      pando_session_restored   next prompt
    SessionEnd        pando_session_ended      runs where the session ended (registered only when a
                                               SessionEnd hook is defined: see SessionEndHooks)

``"continue": false`` from any hook of a turn stops that turn with its ``stopReason``. A hook that
fails (another exit status, a timeout, unreadable JSON) is reported on stderr and ignored.
"""

from __future__ import annotations

import sys
import weakref
from typing import TYPE_CHECKING, Any

from ..errors import TurnStopped
from ..hookspecs import hookimpl
from .settings import EVENTS, HookSet, load_hooks

if TYPE_CHECKING:
    from .runner import HookRun

HOOK_APPROVAL = "pre-tool-use-hook"  # the owner of the permission a PreToolUse "allow" gives


class HookStop(TurnStopped):
    """A hook answered ``"continue": false`` or refused the user's prompt: the turn stops."""


def _specific(run: HookRun) -> dict[str, Any]:
    answer = run.answer or {}
    specific = answer.get("hookSpecificOutput")
    return specific if isinstance(specific, dict) else {}


def _context_of(runs: list[HookRun], *, plain_text: bool) -> list[str]:
    """additionalContext of every run (and the plain stdout of successful runs when *plain_text*)."""
    found = []
    for run in runs:
        extra = _specific(run).get("additionalContext")
        if isinstance(extra, str) and extra.strip():
            found.append(extra.strip())
        elif plain_text and run.text:
            found.append(run.text)
    return found


def _subject(tool_name: str, arguments: dict) -> str:
    """What the permission question names: the command, the file, else the arguments."""
    for key in ("command", "file_path", "path", "url", "pattern"):
        if isinstance(arguments.get(key), str) and arguments[key].strip():
            return arguments[key].strip()
    import json

    return json.dumps(arguments, ensure_ascii=False, default=str)[:200]


async def _confirm(permissions: Any, session_id: str, tool_name: str, arguments: dict, reasons: list[str]) -> None:
    """A PreToolUse "ask": the user confirms the call whatever the rules, --yolo or grants would
    allow; a deny rule still refuses, and with nobody to ask (``pando run``) it is refused."""
    from ..agent.tools.base import PermissionDenied, PermissionRequest

    subject = _subject(tool_name, arguments)
    why = "; ".join(r for r in reasons if r) or "no reason given"
    params = dict(arguments)
    request = PermissionRequest(
        tool_name=tool_name, action="execute", description=f"{subject}\n(a PreToolUse hook asks you to confirm: {why})",
        path=arguments.get("file_path") if isinstance(arguments.get("file_path"), str) else None, params=params,
    )
    if await permissions.confirm(session_id, request):
        return
    if permissions.asker is None:
        raise PermissionDenied(
            f"Permission denied: {tool_name} {subject}: a PreToolUse hook asks to confirm this call ({why}) "
            "and nobody can be asked here (non-interactive run)"
        )
    raise PermissionDenied(f"Permission denied: {tool_name} {subject} (asked because of a PreToolUse hook: {why})")


class ShellHooks:
    """Hook implementations; the definitions are read once per App."""

    def __init__(self) -> None:
        self._sets: weakref.WeakKeyDictionary[Any, HookSet] = weakref.WeakKeyDictionary()
        self._session_context: dict[str, list[str]] = {}  # SessionStart output waiting for a prompt

    # -- definitions -----------------------------------------------------------------------------

    @hookimpl
    def pando_config_sections(self) -> Any:
        from ..config import ConfigSection, Field

        fields = {event: Field("any", None, f"{event} hooks: a list of {{matcher, hooks}} groups") for event in EVENTS}
        return ConfigSection("hooks", fields, "shell hooks, in Claude Code's settings.json shape")

    def hooks(self, app: Any) -> HookSet:
        found = self._sets.get(app)
        if found is None:
            found = load_hooks(app.workdir, app.config.section("hooks"))
            self._sets[app] = found
            for warning in found.warnings:
                print(f"pando: warning: {warning}", file=sys.stderr)
        return found

    # -- running ---------------------------------------------------------------------------------

    def _payload(self, app: Any, event: str, session_id: str, **extra: Any) -> dict[str, Any]:
        yolo = bool(getattr(getattr(app, "permissions", None), "yolo", False))
        return {
            "session_id": session_id,
            "transcript_path": "",
            "cwd": str(app.workdir),
            "hook_event_name": event,
            "permission_mode": "bypassPermissions" if yolo else "default",
            **extra,
        }

    def _run(self, app: Any, event: str, names: tuple[str, ...], payload: dict[str, Any]) -> list[HookRun]:
        commands = self.hooks(app).commands_for(event, *names)
        if not commands:
            return []
        from .runner import run_hooks  # subprocess and threads: only when a hook runs

        runs = run_hooks(commands, payload, app.workdir)
        for run in runs:
            if run.problem:
                print(f"pando: warning: {event} hook `{run.command.command}` {run.problem} (ignored)", file=sys.stderr)
            message = (run.answer or {}).get("systemMessage")
            if isinstance(message, str) and message.strip():
                print(f"pando: {event} hook: {message.strip()}", file=sys.stderr)
        return runs

    async def _arun(self, app: Any, event: str, names: tuple[str, ...], payload: dict[str, Any]) -> list[HookRun]:
        if not self.hooks(app).commands_for(event, *names):
            return []  # no thread for the common case: nothing configured
        import asyncio  # not at import time: `pando plugins` stays light

        return await asyncio.to_thread(self._run, app, event, names, payload)

    @staticmethod
    def _is_subagent(app: Any, session_id: str) -> bool:
        """A sub-agent's session: its prompts come from the model, its turns are not the user's."""
        try:
            return bool(app.sessions.get(session_id).get("parent_session_id"))
        except Exception:  # noqa: BLE001 - an unknown session is treated as the user's
            return False

    @staticmethod
    def _stop_if_asked(event: str, runs: list[HookRun]) -> None:
        for run in runs:
            if run.answer is not None and run.answer.get("continue") is False:
                reason = str(run.answer.get("stopReason") or "no reason given")
                raise HookStop(f"stopped by a {event} hook: {reason}")

    # -- tool calls ------------------------------------------------------------------------------

    @hookimpl
    async def pando_before_tool_call(self, app: Any, session_id: str, tool_name: str, arguments: dict) -> Any:
        from ..agent.tools.base import ToolError
        from ..agent.tools.claude_names import claude_name

        permissions = getattr(app, "permissions", None)
        if permissions is not None:
            permissions.revoke_temporary(session_id, HOOK_APPROVAL)  # an approval covers one call only
        payload = self._payload(
            app, "PreToolUse", session_id, tool_name=claude_name(tool_name), pando_tool_name=tool_name, tool_input=arguments
        )
        runs = await self._arun(app, "PreToolUse", (tool_name, claude_name(tool_name)), payload)
        if not runs:
            return None
        self._stop_if_asked("PreToolUse", runs)
        for run in runs:
            if run.blocked:
                raise ToolError(run.stderr or f"{tool_name} was blocked by a PreToolUse hook")
        decisions = []
        for run in runs:
            specific, answer = _specific(run), run.answer or {}
            decision = specific.get("permissionDecision") or {"approve": "allow", "block": "deny"}.get(answer.get("decision"))
            reason = specific.get("permissionDecisionReason") or answer.get("reason") or ""
            if decision:
                decisions.append((str(decision), str(reason)))
        for decision, reason in decisions:
            if decision == "deny":
                raise ToolError(reason or f"{tool_name} was denied by a PreToolUse hook")
        updated = next((u for u in (_specific(run).get("updatedInput") for run in runs) if isinstance(u, dict)), None)
        final = {**arguments, **updated} if updated is not None else arguments
        asks = [reason for decision, reason in decisions if decision == "ask"]
        if permissions is not None and asks:
            await _confirm(permissions, session_id, tool_name, final, asks)
            permissions.grant_temporary(session_id, HOOK_APPROVAL, [(tool_name, "*")])  # asked once: enough
        elif permissions is not None and any(decision == "allow" for decision, _ in decisions):
            permissions.grant_temporary(session_id, HOOK_APPROVAL, [(tool_name, "*")])
        return final if updated is not None else None

    @hookimpl
    async def pando_after_tool_call(self, app: Any, session_id: str, tool_name: str, arguments: dict, result: Any) -> Any:
        from ..agent.tools.claude_names import claude_name

        permissions = getattr(app, "permissions", None)
        if permissions is not None:
            permissions.revoke_temporary(session_id, HOOK_APPROVAL)
        if isinstance(result, str):  # a plugin before this one returned the new content alone
            from ..agent.tools.base import ToolResult

            result = ToolResult(result)
        response = {"content": result.content, "is_error": result.is_error, "metadata": result.metadata}
        payload = self._payload(
            app, "PostToolUse", session_id, tool_name=claude_name(tool_name), pando_tool_name=tool_name,
            tool_input=arguments, tool_response=response,
        )
        runs = await self._arun(app, "PostToolUse", (tool_name, claude_name(tool_name)), payload)
        if not runs:
            return None
        self._stop_if_asked("PostToolUse", runs)
        notes = []
        for run in runs:
            answer = run.answer or {}
            if run.blocked and run.stderr:
                notes.append(run.stderr)
            elif answer.get("decision") == "block" and answer.get("reason"):
                notes.append(str(answer["reason"]))
        notes.extend(_context_of(runs, plain_text=False))
        if not notes:
            return None
        return type(result)(f"{result.content}\n\n" + "\n\n".join(notes), result.is_error, result.metadata)

    # -- prompts and turns -----------------------------------------------------------------------

    @hookimpl
    async def pando_enrich_context(self, app: Any, session_id: str, prompt: str) -> Any:
        waiting = self._session_context.pop(session_id, [])
        if self.hooks(app).commands_for("UserPromptSubmit") and self._is_subagent(app, session_id):
            return "\n\n".join(waiting) if waiting else None
        runs = await self._arun(app, "UserPromptSubmit", (), self._payload(app, "UserPromptSubmit", session_id, prompt=prompt))
        self._stop_if_asked("UserPromptSubmit", runs)
        for run in runs:
            answer = run.answer or {}
            if run.blocked or answer.get("decision") == "block":
                reason = run.stderr if run.blocked else str(answer.get("reason") or "")
                raise HookStop(f"the prompt was blocked by a UserPromptSubmit hook: {reason or 'no reason given'}")
        found = [*waiting, *_context_of(runs, plain_text=True)]
        return "\n\n".join(found) if found else None

    @hookimpl
    async def pando_turn_finished(self, app: Any, session_id: str) -> None:
        permissions = getattr(app, "permissions", None)
        if permissions is not None:
            permissions.revoke_temporary(session_id, HOOK_APPROVAL)

    @hookimpl
    async def pando_turn_stopping(self, app: Any, session_id: str, response: str, continuation: int) -> Any:
        """Stop hooks: exit 2 (stderr) or ``"decision": "block"`` (its reason) make the agent go on
        with that text as the next prompt; ``"continue": false`` lets it stop whatever the others say."""
        if not self.hooks(app).commands_for("Stop") or self._is_subagent(app, session_id):
            return None
        payload = self._payload(app, "Stop", session_id, stop_hook_active=continuation > 0, response=response)
        runs = await self._arun(app, "Stop", (), payload)
        for run in runs:
            if run.answer is not None and run.answer.get("continue") is False:
                reason = str(run.answer.get("stopReason") or "")
                print(f"pando: a Stop hook ended the session's work{': ' + reason if reason else ''}", file=sys.stderr)
                return None
        reasons = []
        for run in runs:
            answer = run.answer or {}
            if run.blocked:
                reasons.append(run.stderr or "A Stop hook asked you to go on.")
            elif answer.get("decision") == "block":
                reasons.append(str(answer.get("reason") or "").strip() or "A Stop hook asked you to go on.")
        return "\n\n".join(reasons) if reasons else None

    # -- sessions --------------------------------------------------------------------------------

    def _session_start(self, app: Any, session: dict, source: str) -> None:
        session_id = session["id"]
        runs = self._run(app, "SessionStart", (source,), self._payload(app, "SessionStart", session_id, source=source))
        found = _context_of(runs, plain_text=True)
        if found:
            self._session_context.setdefault(session_id, []).extend(found)

    @hookimpl
    def pando_session_created(self, app: Any, session: dict) -> None:
        self._session_start(app, session, "startup")

    @hookimpl
    def pando_session_restored(self, app: Any, session: dict) -> None:
        self._session_start(app, session, "resume")

    def session_ended(self, app: Any, session: dict, origin: str) -> None:
        if origin != app.instance_id:
            return  # the primary hears of other instances' sessions: their hooks ran there
        self._session_context.pop(session["id"], None)
        self._run(app, "SessionEnd", (), self._payload(app, "SessionEnd", session["id"], reason="other"))


class SessionEndHooks:
    """``pando_session_ended`` on its own, registered only where a SessionEnd hook is defined: a
    listener of that hook makes the core follow every commit (remote session ends, idle sweeps)."""

    def __init__(self, shell_hooks: ShellHooks) -> None:
        self.shell_hooks = shell_hooks

    @hookimpl
    def pando_session_ended(self, app: Any, session: dict, origin: str) -> None:
        self.shell_hooks.session_ended(app, session, origin)


def register(plugins: Any, workdir: Any, config_data: dict[str, Any]) -> None:
    """Register the shell-hooks plugin (last: the user's commands see the arguments and results as
    the plugins left them), unlisted, and its SessionEnd part when some source defines one."""
    from .settings import defines_event

    shell_hooks = ShellHooks()
    plugins.register(shell_hooks, "core.shell-hooks", listed=False)
    if defines_event(workdir, config_data.get("hooks"), "SessionEnd"):
        plugins.register(SessionEndHooks(shell_hooks), "core.shell-hooks.session-end", listed=False)
