"""``bash`` in the editor's terminal, when the editor offers one (``terminal: true``).

The command runs where the user sees it (the editor shows the terminal live in the tool call)
with pando's rules unchanged: the banned commands are refused, a command that is not read-only is
asked about first, the session's working directory carries over from one call to the next, and
the timeout and cancellation kill the command. Outside an ACP turn, or for a client without
terminals, pando's own bash runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

import acp

from pando_core.agent.tools.base import (
    ToolContext,
    ToolError,
    ToolResult,
    wait_unless_cancelled,
)
from pando_core.agent.tools.bash import banned_word
from pando_core.agent.tools.builtin import builtin_tools
from pando_core.agent.tools.write import int_arg, str_arg

from .turn import CURRENT_TURN

OUTPUT_LIMIT = 1024 * 1024  # bytes of output the editor keeps for the model


def _terminal_turn():  # noqa: ANN202
    turn = CURRENT_TURN.get()
    if turn is None or turn.client_gone or not turn.capabilities.terminal:
        return None
    return turn


def _limit_lines(text: str, head: int, tail: int) -> str:
    lines = text.splitlines()
    if head:
        lines = lines[:head]
    if tail:
        lines = lines[-tail:]
    return "\n".join(lines)


class EditorBashTool:
    """pando's ``bash``, run in the editor's terminal when it can."""

    name = "bash"
    read_only = False
    asks_permission = True  # asks unless the command is read-only, as pando's bash does

    def __init__(self, tools_config: dict[str, Any]) -> None:
        self.builtin = next(t for t in builtin_tools(tools_config) if t.name == "bash")
        self.description = self.builtin.description
        self.parameters = self.builtin.parameters

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        turn = _terminal_turn()
        if turn is None:
            return await self.builtin.run(args, ctx)
        command = str_arg(args, "command", required=True)
        if not command.strip():
            raise ToolError("command is required")
        word = banned_word(command, self.builtin.banned)
        if word:
            raise ToolError(f"Command '{word}' is not allowed for security reasons (banned: {', '.join(self.builtin.banned)}).")
        timeout_ms = int_arg(args, "timeout", 0)
        timeout_ms = min(timeout_ms if timeout_ms > 0 else self.builtin.default_timeout_ms, self.builtin.max_timeout_ms)
        state = self.builtin.state_for(ctx)
        cwd = state.cwd if os.path.isdir(state.cwd) else str(ctx.root())
        # the same check as pando's own bash: read-only commands run unasked, a deny rule always wins
        request = await self.builtin.permission(args, ctx)
        if request is not None:
            await ctx.ask(request)
        with tempfile.TemporaryDirectory(prefix="pando-acp-bash-") as tmp:
            cwd_file = Path(tmp) / "cwd"
            # the directory the command ends in is the next command's (as with pando's own bash)
            script = f"{command}\n__pando_status=$?\npwd -P > {shlex.quote(str(cwd_file))}\nexit $__pando_status"
            output, exit_code, stopped = await self._run_in_terminal(turn, ctx, script, cwd, timeout_ms)
            with contextlib.suppress(OSError):
                ended_in = cwd_file.read_text().strip()
                if ended_in and os.path.isdir(ended_in):
                    state.cwd = ended_in
        text = _limit_lines(output, int_arg(args, "head_limit", 0, minimum=0), int_arg(args, "tail_lines", 0, minimum=0))
        if stopped:
            text += f"\n(Command was {stopped} and killed.)"
        elif exit_code:
            text += f"\n(Exit code {exit_code})"
        metadata = {"exit_code": exit_code, "cancelled": stopped == "cancelled", "timed_out": stopped.startswith("timed out"), "terminal": True}
        return ToolResult(content=text.strip() or "(no output)", is_error=bool(stopped), metadata=metadata)

    async def _run_in_terminal(self, turn, ctx: ToolContext, script: str, cwd: str, timeout_ms: int):  # noqa: ANN001, ANN202
        client, session_id = turn.client, turn.session.id
        created = await client.create_terminal(
            session_id, command=self.builtin.shell_path, args=["-c", script], cwd=cwd, output_byte_limit=OUTPUT_LIMIT
        )
        terminal_id = created.terminal_id
        shown = [acp.tool_terminal_ref(terminal_id)]
        turn.call_content[ctx.call_id] = shown  # the final update of the call keeps showing the terminal
        turn.send(acp.update_tool_call(ctx.call_id, status="in_progress", content=shown))
        try:
            waiting = asyncio.ensure_future(client.wait_for_terminal_exit(session_id, terminal_id))
            outcome = await wait_unless_cancelled(waiting, ctx, timeout_ms / 1000)
            stopped = {"cancelled": "cancelled", "timeout": f"timed out after {timeout_ms / 1000:g} s"}.get(outcome, "")
            if stopped:
                waiting.cancel()
                await client.kill_terminal(session_id, terminal_id)
            output = await client.terminal_output(session_id, terminal_id)
            exit_code = None if stopped else (waiting.result().exit_code)
            if exit_code is None and output.exit_status is not None:
                exit_code = output.exit_status.exit_code
            return output.output, exit_code or 0, stopped
        finally:
            with contextlib.suppress(Exception):
                await client.release_terminal(session_id, terminal_id)
