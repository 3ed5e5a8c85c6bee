"""The `bash` tool: run a shell command, keeping the working directory (and exports) between calls.

Each call runs `bash -c` in its own process group, in the session's remembered directory. An EXIT trap
writes the final `pwd` and the exported environment to files in a private temp directory (a side channel
that the command's output cannot disturb); the next call of the same session starts from there. Output
goes to temp files too, so background jobs that keep a pipe open cannot hang the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import signal
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pando_core.agent.tools import sandbox as sandboxing
from pando_core.agent.tools.base import (
    PermissionRequest,
    ToolContext,
    ToolError,
    ToolResult,
    wait_unless_cancelled,
)
from pando_core.agent.tools.sandbox import Sandbox, SandboxSettings, SandboxUnavailable
from pando_core.agent.tools.shell_safety import classify, secret_variables
from pando_core.agent.tools.write import int_arg, str_arg

DEFAULT_TIMEOUT_MS = 60_000
MAX_TIMEOUT_MS = 600_000
MAX_OUTPUT_CHARS = 30_000
KILL_GRACE_S = 1.0
MAX_SESSIONS = 256
MAX_ARG_SCRIPT = 100_000  # longer commands are passed as a script file (argv strings are limited)
ABORTED = "Command was aborted before completion"

DEFAULT_BANNED: tuple[str, ...] = (
    "alias",
    "curl",
    "curlie",
    "wget",
    "axel",
    "aria2c",
    "nc",
    "telnet",
    "lynx",
    "w3m",
    "links",
    "httpie",
    "xh",
    "http-prompt",
    "chrome",
    "firefox",
    "safari",
)

SEPARATORS = frozenset({";", "&&", "||", "|", "|&", "&", "(", ")", "<(", ">(", ";;", "\n"})
KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "fi", "done"})
WRAPPERS = frozenset({"sudo", "doas", "command", "builtin", "exec", "nohup", "time", "nice", "stdbuf", "env"})
SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh", "fish"})
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\+?=")
DROP_ENV = frozenset({"_", "SHLVL", "PWD"})

BASH_DESCRIPTION = """Run a bash command and return its output (stdout, then stderr).

Usage notes:
- The working directory persists between calls of this session: after `cd src`, the next command runs in
  src. Exported environment variables persist too (shell functions and aliases do not).
- timeout is in milliseconds (default 60000, max 600000). On timeout (or when the user cancels) the command
  and all its child processes are killed and the output ends with "Command was aborted before completion".
- stdin is /dev/null: interactive programs cannot prompt (use flags such as -y / --yes / --no-edit);
  GIT_EDITOR=true so git never opens an editor.
- stdout and stderr are each limited to 30000 characters; beyond that the middle is dropped and replaced by
  "[N lines truncated]". Use head_limit (first N lines) and/or tail_lines (last N lines) for long outputs,
  e.g. tail_lines=50 for a test run.
- A non-zero exit status is reported as "Exit code N" at the end of the output.
- Banned for safety: alias curl curlie wget axel aria2c nc telnet lynx w3m links httpie xh http-prompt
  chrome firefox safari — use the fetch tool for web content.
- Prefer the dedicated tools over shell equivalents: view (not cat/head/tail), grep (not grep/rg), glob
  (not find), ls, edit/write/patch (not sed/echo redirection).
- Chain dependent commands with `&&`; quote paths containing spaces. Read-only commands (ls, git status,
  git diff, cat/grep/find on files in the working directory, ...) run without asking; anything that
  writes, runs other programs, reads outside the working directory or prints the environment may need
  the user's approval. Provider API keys and other *_API_KEY / *_TOKEN / *_SECRET variables are not in
  the environment."""

SANDBOX_NOTE = """
- Commands may run in a sandbox: the working directory and /tmp are writable, the rest of the file
  system is read-only, credentials in $HOME (~/.ssh, ~/.aws, ...) look empty, and there is no network
  unless the user allowed it. Each call is its own sandbox: background processes end with the call."""


_SHELL_STATES: OrderedDict[str, ShellState] = OrderedDict()


@dataclass
class ShellState:
    """What persists between bash calls of one session."""

    cwd: str
    env: dict[str, str] | None = None
    lock: asyncio.Lock | None = field(default=None, repr=False)
    lock_loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    sandbox_tmp: str | None = None  # the host directory a sandboxed call sees as /tmp


# --------------------------------------------------------------------------- command analysis


def _tokens(command: str) -> list[str] | None:
    """Shell-ish tokens with operators separated; newlines become ';'. None when it cannot be parsed."""
    text = command.replace("\r\n", "\n").replace("\n", " ; ")
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:
        return None


def split_segments(command: str) -> list[list[str]] | None:
    """The simple commands of a command line (split at ; && || | & ( ) and newlines)."""
    tokens = _tokens(command)
    if tokens is None:
        return None
    segments: list[list[str]] = [[]]
    for token in tokens:
        if token in SEPARATORS or (token and set(token) <= set(";&|()")):
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append(token)
    return [segment for segment in segments if segment]


def _skip_prefix_words(words: list[str]) -> list[str]:
    """Drop assignments, shell keywords and wrapper commands (sudo, env, nice -n 5, timeout 10 ...)."""
    index = 0
    while index < len(words):
        word = words[index]
        base = os.path.basename(word).lower()
        if ASSIGNMENT.match(word) or word in KEYWORDS:
            index += 1
            continue
        if base in ("command", "type") and index + 1 < len(words) and words[index + 1] in ("-v", "-V"):
            return []  # `command -v curl` only looks the command up
        if base in WRAPPERS:
            index += 1
            while index < len(words) and (words[index].startswith("-") or ASSIGNMENT.match(words[index])):
                if words[index] in ("-n", "-u", "-g", "-C", "-i", "-o", "-e") and index + 1 < len(words):
                    index += 1  # option with a separate value (nice -n 5, sudo -u root, stdbuf -o L)
                index += 1
            continue
        if base == "timeout":
            index += 1
            while index < len(words) and words[index].startswith("-"):
                index += 1
            index += 1  # the duration
            continue
        if base == "xargs":
            index += 1
            while index < len(words) and words[index].startswith("-"):
                index += 1
            continue
        break
    return words[index:]


def banned_word(command: str, banned: Iterable[str], _depth: int = 0) -> str | None:
    """The first banned command word used anywhere in the command line, if any."""
    banned_set = {item.lower() for item in banned}
    if not banned_set:
        return None
    segments = split_segments(command)
    if segments is None:
        segments = [part.split() for part in re.split(r"[;&|()\n`]+|\$\(", command) if part.strip()]
    for segment in segments:
        words = _skip_prefix_words(segment)
        if not words:
            continue
        first = os.path.basename(words[0]).lower()
        if first in banned_set:
            return first
        if _depth < 3 and first in SHELLS and "-c" in words[1:]:
            position = words.index("-c", 1)
            if position + 1 < len(words):
                inner = banned_word(words[position + 1], banned_set, _depth + 1)
                if inner:
                    return inner
        if _depth < 3 and first == "eval" and len(words) > 1:
            inner = banned_word(" ".join(words[1:]), banned_set, _depth + 1)
            if inner:
                return inner
    # command substitutions: $(curl ...) and `curl ...`
    if _depth < 3:
        for inner_text in re.findall(r"\$\(([^()]*)\)|`([^`]*)`", command):
            for part in inner_text:
                if part:
                    inner = banned_word(part, banned_set, _depth + 1)
                    if inner:
                        return inner
    return None


# --------------------------------------------------------------------------- output handling


def truncate_middle(text: str) -> tuple[str, bool]:
    """Keep the first and last MAX_OUTPUT_CHARS/2 characters with "[N lines truncated]" in between."""
    if len(text) <= MAX_OUTPUT_CHARS:
        return text, False
    half = MAX_OUTPUT_CHARS // 2
    omitted = text[half : len(text) - half]
    lines = omitted.count("\n") + 1
    return f"{text[:half]}\n\n[{lines} lines truncated]\n\n{text[len(text) - half :]}", True


def limit_lines(text: str, head: int, tail: int) -> tuple[str, bool]:
    if head <= 0 and tail <= 0:
        return text, False
    lines = text.split("\n")
    if head > 0 and tail > 0:
        if len(lines) <= head + tail:
            return text, False
        omitted = len(lines) - head - tail
        return "\n".join([*lines[:head], f"[... {omitted} lines omitted ...]", *lines[-tail:]]), True
    if head > 0:
        if len(lines) <= head:
            return text, False
        return "\n".join(lines[:head]) + f"\n[... {len(lines) - head} more lines not shown]", True
    if len(lines) <= tail:
        return text, False
    return f"[... {len(lines) - tail} earlier lines not shown]\n" + "\n".join(lines[-tail:]), True


def _read_output(path: Path, max_bytes: int = 32 * 1024 * 1024) -> str:
    try:
        size = path.stat().st_size
    except OSError:
        return ""
    with open(path, "rb") as handle:
        if size <= max_bytes:
            data = handle.read()
            return data.decode("utf-8", "replace")
        chunk = 1024 * 1024
        head = handle.read(chunk)
        middle_lines = 0
        remaining = size - 2 * chunk
        while remaining > 0:
            piece = handle.read(min(remaining, chunk))
            if not piece:
                break
            middle_lines += piece.count(b"\n")
            remaining -= len(piece)
        tail = handle.read()
    return (
        head.decode("utf-8", "replace")
        + f"\n\n[{middle_lines} lines truncated]\n\n"
        + tail.decode("utf-8", "replace")
    )


# --------------------------------------------------------------------------- the tool


class BashTool:
    name = "bash"
    read_only = False
    # run() asks through permission() itself (under the session's lock, with the directory the
    # command will run in), so the core does not ask a second time; permission() is None for a
    # read-only command that no deny rule matches
    asks_permission = True
    description = BASH_DESCRIPTION
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The command to execute"},
            "timeout": {
                "type": "integer",
                "description": "Timeout in milliseconds (default 60000, max 600000)",
            },
            "head_limit": {"type": "integer", "description": "Only return the first N lines of output"},
            "tail_lines": {"type": "integer", "description": "Only return the last N lines of output"},
        },
        "required": ["command"],
    }

    def __init__(
        self,
        banned: Iterable[str] | None = None,
        allowed: Iterable[str] | None = None,
        *,
        shell_path: str | None = None,
        shell_args: Iterable[str] = (),
        default_timeout_ms: int = DEFAULT_TIMEOUT_MS,
        max_timeout_ms: int = MAX_TIMEOUT_MS,
        sandbox: SandboxSettings | None = None,
    ) -> None:
        allowed_set = {item.lower() for item in (allowed or ())}
        base = DEFAULT_BANNED if banned is None else tuple(banned)
        self.banned = tuple(item.lower() for item in base if item.lower() not in allowed_set)
        self.shell_path = shell_path or shutil.which("bash") or "/bin/bash"
        self.shell_args = tuple(shell_args)
        self.default_timeout_ms = default_timeout_ms
        self.max_timeout_ms = max_timeout_ms
        # None: unsandboxed (direct use); the agent's tools get the `[tools]` settings (default auto)
        self.sandbox = Sandbox(sandbox)
        if self.sandbox.settings.mode != "off":
            self.description = BASH_DESCRIPTION + SANDBOX_NOTE
        # shared by all BashTool instances: agent loops may build fresh tool objects for every turn
        self._states = _SHELL_STATES

    # ------------------------------------------------------------------ state

    def state_for(self, ctx: ToolContext) -> ShellState:
        """The session's shell state.

        States are kept per (session id, working directory) in a process-wide LRU, so the directory
        survives across turns even when the tool object is recreated.
        """
        workdir = str(ctx.root())
        key = f"{ctx.session_id}\0{workdir}"
        state = self._states.get(key)
        if state is None:
            state = ShellState(cwd=workdir)
            self._states[key] = state
            while len(self._states) > MAX_SESSIONS:
                sandboxing.remove_tmp(self._states.popitem(last=False)[1].sandbox_tmp)
        else:
            self._states.move_to_end(key)
        return state

    def fresh_state(self, ctx: ToolContext) -> ShellState:
        """A one-off shell at the working directory root, with pando's environment: for commands
        that are not the session's (a custom command's ``!`cmd```), so that an earlier ``cd`` or
        ``export`` does not move them and theirs does not move the session. Pass it to
        :meth:`permission` and :meth:`run`, then :meth:`discard_state`."""
        return ShellState(cwd=str(ctx.root()))

    @staticmethod
    def discard_state(state: ShellState) -> None:
        sandboxing.remove_tmp(state.sandbox_tmp)

    # ------------------------------------------------------------------ run

    def _timeout_ms(self, args: dict[str, Any]) -> int:
        timeout_ms = int_arg(args, "timeout", 0)
        if timeout_ms <= 0:
            timeout_ms = self.default_timeout_ms
        return min(timeout_ms, self.max_timeout_ms)

    def _start_dir(self, state: ShellState, ctx: ToolContext) -> str:
        """Where the next command runs: the remembered directory, or the workdir when it is gone."""
        return state.cwd if os.path.isdir(state.cwd) else str(ctx.root())

    async def permission(
        self, args: dict[str, Any], ctx: ToolContext, *, state: ShellState | None = None
    ) -> PermissionRequest | None:
        """None when the command is read-only and no deny rule matches it; else what to ask for.

        A deny rule (``[permissions] deny_bash``) wins over read-only: the request is returned so
        that the permission service refuses it. *state*: another shell than the session's."""
        command = str_arg(args, "command", required=True)
        cwd = self._start_dir(state or self.state_for(ctx), ctx)
        request = PermissionRequest(
            tool_name=self.name,
            action="execute",
            description=command,
            path=cwd,
            params={"command": command, "timeout": self._timeout_ms(args), "cwd": cwd},
        )
        if not classify(command, ctx.root(), cwd).read_only:
            return request
        denies = getattr(ctx.permissions, "denies", None)
        if denies is not None and denies(request):
            return request
        return None

    async def run(self, args: dict[str, Any], ctx: ToolContext, *, state: ShellState | None = None) -> ToolResult:
        command = str_arg(args, "command", required=True)
        if not command.strip():
            raise ToolError("command is required")
        timeout_ms = self._timeout_ms(args)
        head = int_arg(args, "head_limit", 0, minimum=0)
        tail = int_arg(args, "tail_lines", 0, minimum=0)

        word = banned_word(command, self.banned)
        if word:
            raise ToolError(
                f"Command '{word}' is not allowed for security reasons (banned: {', '.join(self.banned)}). "
                "Use the fetch tool to read web content."
            )

        state = state or self.state_for(ctx)
        loop = asyncio.get_running_loop()
        if state.lock is None or state.lock_loop is not loop:
            state.lock = asyncio.Lock()  # one command at a time per session (cwd hand-over)
            state.lock_loop = loop
        async with state.lock:
            request = await self.permission(args, ctx, state=state)
            if request is not None:
                await ctx.ask(request)
            return await self._run_locked(command, timeout_ms, head, tail, state, ctx)

    async def _run_locked(
        self, command: str, timeout_ms: int, head: int, tail: int, state: ShellState, ctx: ToolContext
    ) -> ToolResult:
        notes: list[str] = []
        cwd = state.cwd
        if not os.path.isdir(cwd):
            notes.append(f"(The previous directory {cwd} no longer exists; running in {ctx.workdir}.)")
            cwd = str(ctx.root())
            state.cwd = cwd

        if ctx.cancel_event is not None and ctx.cancel_event.is_set():
            return ToolResult(
                content=f"{ABORTED} (cancelled before it started)",
                metadata={"exit_code": -1, "cancelled": True, "timed_out": False, "truncated": False},
            )
        tmpdir = Path(tempfile.mkdtemp(prefix="pando-bash-"))
        try:
            return await self._execute(command, timeout_ms, head, tail, state, cwd, tmpdir, notes, ctx)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def _environment(self, state: ShellState, ctx: ToolContext) -> dict[str, str]:
        """The command's environment, without the provider API keys and other secrets pando was
        started with (a variable the commands exported themselves is kept)."""
        inherited = os.environ
        secrets = secret_variables(inherited, _provider_key_names(ctx))
        if state.env:
            env = {k: v for k, v in state.env.items() if not (k in secrets and inherited.get(k) == v)}
        else:
            env = {k: v for k, v in inherited.items() if k not in secrets}
        env["GIT_EDITOR"] = "true"
        env.setdefault("GIT_PAGER", "cat")
        env.setdefault("PAGER", "cat")
        return env

    async def _execute(
        self,
        command: str,
        timeout_ms: int,
        head: int,
        tail: int,
        state: ShellState,
        cwd: str,
        tmpdir: Path,
        notes: list[str],
        ctx: ToolContext,
    ) -> ToolResult:
        cwd_file = tmpdir / "cwd"
        env_file = tmpdir / "env"
        out_file = tmpdir / "stdout"
        err_file = tmpdir / "stderr"
        dump_env = (
            f'for __pando_v in $(compgen -e); do printf \'%s=%s\\0\' "$__pando_v" "${{!__pando_v}}"; '
            f"done > {shlex.quote(str(env_file))} 2>/dev/null; "
        )
        trap = f"__pando_ec=$?; pwd -P > {shlex.quote(str(cwd_file))} 2>/dev/null; {dump_env}exit $__pando_ec"
        # (on its own line: a syntax error in the command must not quote the trap back to the model)
        script = f"trap {shlex.quote(trap)} EXIT\n{command}\n"
        if len(script) > MAX_ARG_SCRIPT:
            script_file = tmpdir / "script.sh"
            script_file.write_text(script, encoding="utf-8")
            argv = [self.shell_path, *self.shell_args, str(script_file)]
        else:
            argv = [self.shell_path, *self.shell_args, "-c", script]
        try:
            found = await asyncio.to_thread(self.sandbox.active_probe)  # cached after the first call
        except SandboxUnavailable as exc:
            raise ToolError(str(exc)) from exc
        if found is not None:
            if state.sandbox_tmp is None or not os.path.isdir(state.sandbox_tmp):
                state.sandbox_tmp = sandboxing.session_tmp()
            # the private temp directory is bound in: the EXIT trap writes the cwd and env there
            argv, mounted = self.sandbox.wrap(
                argv, found, command=command, workdir=str(ctx.root()), cwd=cwd, private=[tmpdir], tmp=state.sandbox_tmp
            )

        started = time.time()
        clock = time.monotonic()
        with open(out_file, "wb") as out, open(err_file, "wb") as err:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    cwd=cwd,
                    env=self._environment(state, ctx),
                    start_new_session=True,
                )
            except OSError as exc:
                raise ToolError(f"Failed to start the shell ({self.shell_path}): {exc}") from exc
        wait_task = asyncio.ensure_future(proc.wait())
        try:
            aborted = await wait_unless_cancelled(wait_task, ctx, timeout_ms / 1000)
            if aborted:
                await _kill_group(proc)
        except asyncio.CancelledError:
            await _kill_group(proc)
            raise
        finally:
            if not wait_task.done():
                wait_task.cancel()
        ended = time.time()
        duration_ms = int((time.monotonic() - clock) * 1000)
        exit_code = proc.returncode if proc.returncode is not None else -1
        if exit_code < 0:
            exit_code = 128 - exit_code  # killed by signal N → 128 + N, like the shell reports it

        self._update_state(state, cwd_file, env_file)
        if found is not None and state.sandbox_tmp:
            sandboxing.forget_mount_points(state.sandbox_tmp, mounted)

        stdout = _read_output(out_file).rstrip("\n")
        stderr = _read_output(err_file).rstrip("\n")
        total_lines = stdout.count("\n") + 1 if stdout else 0
        stdout, cut_out = limit_lines(stdout, head, tail)
        stderr, cut_err = limit_lines(stderr, head, tail)
        stdout, trunc_out = truncate_middle(stdout)
        stderr, trunc_err = truncate_middle(stderr)

        content = "\n".join(part for part in (stdout, stderr) if part)
        if aborted:
            reason = f" (timed out after {timeout_ms} ms)" if aborted == "timeout" else " (cancelled)"
            content += ("\n" if content else "") + ABORTED + reason
        elif exit_code != 0:
            hint = sandboxing.hint_for(content, self.sandbox.network_for(command)) if found else None
            content += ("\n" if content else "") + f"Exit code {exit_code}" + (f"\n{hint}" if hint else "")
        if notes:
            content = "\n".join(notes) + ("\n" + content if content else "")
        if not content:
            content = "no output"
        return ToolResult(
            content=content,
            metadata={
                "exit_code": exit_code,
                "duration_ms": duration_ms,
                "start_ms": int(started * 1000),
                "end_ms": int(ended * 1000),
                "total_lines": total_lines,
                "truncated": trunc_out or trunc_err or cut_out or cut_err,
                "timed_out": aborted == "timeout",
                "cancelled": aborted == "cancelled",
                "cwd": state.cwd,
                "sandboxed": found is not None,
            },
        )

    def _update_state(self, state: ShellState, cwd_file: Path, env_file: Path) -> None:
        try:
            new_cwd = cwd_file.read_text(encoding="utf-8", errors="surrogateescape").rstrip("\n")
        except OSError:
            new_cwd = ""
        if new_cwd and os.path.isdir(new_cwd):
            state.cwd = new_cwd
        try:
            raw = env_file.read_bytes()
        except OSError:
            return
        if not raw:
            return
        env: dict[str, str] = {}
        for item in raw.split(b"\0"):
            if not item or b"=" not in item:
                continue
            name, _, value = item.partition(b"=")
            key = name.decode("utf-8", "surrogateescape")
            if key in DROP_ENV or key.startswith("__pando"):
                continue
            env[key] = value.decode("utf-8", "surrogateescape")
        if env:
            state.env = env


def _provider_key_names(ctx: ToolContext) -> set[str]:
    """The `api_key_env` names of the configured providers (`[providers.NAME] api_key_env`)."""
    app = ctx.extra.get("app")
    try:
        providers = app.config.section("providers") if app is not None else {}
    except Exception:  # noqa: BLE001 - no config: only the name patterns apply
        return set()
    return {str(t["api_key_env"]) for t in providers.values() if isinstance(t, dict) and t.get("api_key_env")}


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is left of it."""
    pgid = proc.pid
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(proc.wait()), KILL_GRACE_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    await proc.wait()
