"""From ``/name args`` to the prompt of a turn.

In the command's text, in this order:
  - ``$ARGUMENTS`` is everything after the name, ``$1`` … ``$9`` its words (shell quoting
    understood); with neither in the text, the arguments are added at the end;
  - ``!`cmd``` is replaced by the output of ``cmd``, run by the bash tool (its sandbox, banned
    commands, scrubbed environment and permission check) from the working directory root, in a
    shell of its own (the session's ``cd`` and ``export`` do not apply, nor do its own after it): a ``deny_bash`` rule refuses it always;
    a read-only command, ``--yolo``, ``allow_bash``, a grant or a ``Bash(...)`` entry of the
    command's ``allowed-tools`` let it run; otherwise the interactive session asks. A command that
    is refused refuses the whole custom command (:class:`CommandRefused`): nothing is sent;
  - ``@path`` names a file of the working directory: its contents are attached after the prompt
    (a path that is no such file stays as it is).

``allowed-tools`` are approved without asking for the command's turn only (deny rules still
refuse); ``model`` is the turn's model unless one was chosen with ``--model``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .catalog import CustomCommand, find_commands, lookup

GRANT_OWNER = "custom-command"
SHELL_PATTERN = re.compile(r"!`([^`\n]+)`")
FILE_PATTERN = re.compile(r"(?<![\w`@])@([\w./~-][^\s`'\"<>]*)")
POSITIONAL = re.compile(r"\$([1-9])(?!\d)")
OUTPUT_LIMIT = 30_000
FILE_LIMIT = 100_000


@dataclass
class Invocation:
    command: CustomCommand
    arguments: str
    prompt: str = ""
    grants: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # shown to the user: commands not run, files not read

    @property
    def model(self) -> str:
        return self.command.model


def parse_invocation(text: str, commands: dict[str, CustomCommand]) -> tuple[CustomCommand, str] | None:
    """The command and its arguments when *text* is ``/name args`` for a known command."""
    stripped = text.strip()
    if not stripped.startswith("/") or stripped.startswith("//"):
        return None
    head, _, arguments = stripped[1:].partition(" ")
    head, newline, rest = head.partition("\n")
    if newline:
        arguments = rest + (" " + arguments if arguments else "")
    command = lookup(commands, head)
    return (command, arguments.strip()) if command is not None else None


def substitute_arguments(body: str, arguments: str) -> str:
    try:
        words = shlex.split(arguments)
    except ValueError:  # unbalanced quotes: plain words
        words = arguments.split()
    if "$ARGUMENTS" not in body and not POSITIONAL.search(body):
        return f"{body.rstrip()}\n\nARGUMENTS: {arguments}" if arguments else body
    text = body.replace("$ARGUMENTS", arguments)
    return POSITIONAL.sub(lambda m: words[int(m.group(1)) - 1] if int(m.group(1)) <= len(words) else "", text)


def tool_grants(allowed_tools: list[str], workdir: Path) -> list[tuple[str, str]]:
    """``allowed-tools`` entries as ``(pando tool, pattern)`` grants: ``Bash(git add:*)`` →
    ``("bash", "git add")`` and ``("bash", "git add *")`` (Claude Code's prefix is a whole word:
    ``git addx`` is not covered), ``Edit(src/*)`` → ``("edit", "<workdir>/src/*")``, ``Read`` →
    ``("view", "*")``."""
    from ..agent.tools.claude_names import pando_names
    from ..agent.tools.command_patterns import expand

    grants = []
    for entry in allowed_tools:
        match = re.fullmatch(r"\s*([\w.-]+)\s*(?:\((.*)\))?\s*", entry)
        if match is None:
            continue
        name, pattern = match.group(1), (match.group(2) or "").strip()
        for tool in pando_names(name):
            if tool == "bash":
                grants.extend((tool, grant) for grant in expand(pattern))
                continue
            if pattern and pattern != "*" and not pattern.startswith("/"):
                grant = str(workdir / pattern)
            else:
                grant = pattern or "*"
            grants.append((tool, grant))
    return grants


class CommandRefused(UsageError):
    """A ``!`cmd``` of a custom command that the bash tool's rules do not let run: nothing is sent."""


def _bash_tool(app: Any) -> Any:
    from ..agent.tools.builtin import builtin_tools

    tools = builtin_tools(dict(app.config.section("tools"), pager=app.pager))
    return next(tool for tool in tools if tool.name == "bash")


def _refusal(invocation: Invocation, command: str, why: str) -> CommandRefused:
    first = command.split()[0] if command.split() else command
    return CommandRefused(
        f"/{invocation.command.name}: `{command}` was not run: {why} (allow it in the command's frontmatter, "
        f"e.g. `allowed-tools: Bash({first}:*)`, with [permissions] allow_bash, or --yolo); nothing was sent"
    )


async def _check_unasked(app: Any, session_id: str, bash: Any, shell: Any, command: str, invocation: Invocation) -> None:
    """Refuse now a command that a deny rule refuses, or that needs a question nobody can answer."""
    ctx = app.tool_context(session_id, "", f"command-{invocation.command.name}", None)
    request = await bash.permission({"command": command}, ctx, state=shell)
    if request is None:
        return  # read-only, no deny rule
    decision = app.permissions.decide_unasked(session_id, request)
    if decision == "deny":
        raise _refusal(invocation, command, "a [permissions] deny_bash rule refuses it")
    if decision == "ask" and app.permissions.asker is None:
        raise _refusal(invocation, command, "it needs permission and nobody can be asked here")


async def _shell_output(app: Any, session_id: str, bash: Any, shell: Any, command: str, invocation: Invocation) -> str:
    """The output of one ``!`cmd```, run by the bash tool itself: its permission check (deny rules,
    read-only commands, --yolo, allow rules, grants, then the question), banned commands, sandbox,
    scrubbed environment and timeout. It runs in *shell*, started at the working directory root as
    Claude Code does (not where the session's bash was left by a ``cd``). A command it refuses
    refuses the whole custom command."""
    from ..agent.tools.base import PermissionDenied, ToolError

    ctx = app.tool_context(session_id, "", f"command-{invocation.command.name}", None)
    try:
        result = await bash.run({"command": command}, ctx, state=shell)
    except PermissionDenied as exc:
        raise _refusal(invocation, command, str(exc)) from None
    except ToolError as exc:
        raise CommandRefused(f"/{invocation.command.name}: `{command}` was not run: {exc}; nothing was sent") from None
    metadata = result.metadata if isinstance(result.metadata, dict) else {}
    if result.content == "no output" and not metadata.get("total_lines") and metadata.get("exit_code") == 0:
        return ""
    return result.content[:OUTPUT_LIMIT].rstrip()


async def _run_shell_inclusions(app: Any, session_id: str, text: str, invocation: Invocation) -> tuple[str, list[str]]:
    """The text with a placeholder for each ``!`cmd``` and what goes there: a command's output is
    put in after the files are attached, so that an ``@word`` in it attaches nothing. The command's
    ``allowed-tools`` are granted while they run."""
    matches = list(SHELL_PATTERN.finditer(text))
    if not matches:
        return text, []
    pieces, outputs, last = [], [], 0
    app.permissions.grant_temporary(session_id, GRANT_OWNER, invocation.grants)
    bash = _bash_tool(app)
    shell = bash.fresh_state(app.tool_context(session_id, "", f"command-{invocation.command.name}", None))
    try:
        for match in matches:  # every command checked before the first runs: none runs when one is refused
            await _check_unasked(app, session_id, bash, shell, match.group(1).strip(), invocation)
        for match in matches:
            pieces.append(text[last : match.start()] + f"\x00{len(outputs)}\x00")
            outputs.append(await _shell_output(app, session_id, bash, shell, match.group(1).strip(), invocation))
            last = match.end()
    finally:
        app.permissions.revoke_temporary(session_id, GRANT_OWNER)
        bash.discard_state(shell)
    pieces.append(text[last:])
    return "".join(pieces), outputs


def _attach_files(app: Any, text: str, invocation: Invocation) -> str:
    workdir = Path(app.workdir).resolve()
    outside_ok = bool(app.config.section("permissions").get("allow_outside_workdir"))
    attached: dict[str, str] = {}

    def replace(match: re.Match[str]) -> str:
        raw = match.group(1).rstrip(".,;:!?)")
        trailing = match.group(1)[len(raw) :]
        path = (workdir / Path(raw).expanduser()).resolve()
        if not path.is_file() or (not outside_ok and workdir not in path.parents):
            return match.group(0)
        if raw not in attached:
            try:
                attached[raw] = path.read_text(encoding="utf-8", errors="replace")[:FILE_LIMIT]
            except OSError as exc:
                invocation.notes.append(f"{raw} could not be read: {exc.strerror or exc}")
                return match.group(0)
        return raw + trailing

    text = FILE_PATTERN.sub(replace, text)
    blocks = [f"Contents of {name}:\n```\n{content.rstrip()}\n```" for name, content in attached.items()]
    return "\n\n".join([text.rstrip(), *blocks]) if blocks else text


async def prepare(app: Any, session_id: str, command: CustomCommand, arguments: str) -> Invocation:
    """The rendered prompt of one invocation (shell commands run, files attached)."""
    invocation = Invocation(command, arguments, grants=tool_grants(command.allowed_tools, Path(app.workdir)))
    text = substitute_arguments(command.body, arguments)
    text, outputs = await _run_shell_inclusions(app, session_id, text, invocation)
    text = _attach_files(app, text, invocation)
    invocation.prompt = re.sub(r"\x00(\d+)\x00", lambda m: outputs[int(m.group(1))], text).strip()
    return invocation


def commands_of(app: Any) -> dict[str, CustomCommand]:
    return find_commands(Path(app.workdir), getattr(getattr(app, "context", None), "env", None))


def invocation_for(app: Any, text: str) -> tuple[CustomCommand, str] | None:
    """The custom command *text* calls (``/name args``), or None."""
    if not text.lstrip().startswith("/"):
        return None
    return parse_invocation(text, commands_of(app))
