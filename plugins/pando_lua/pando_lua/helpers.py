"""Host functions offered to Lua scripts (``pando_*`` globals), with safe defaults.

The plugin builds a :class:`LuaHelpers` with the data it owns (workdir, config, tool names) and may
override any function.  The engine wraps every function as a plain Lua function: arguments arrive
converted to Python values, the result is converted back to Lua, and no Python object ever reaches
the script.

Lua-visible helpers and their defaults:

``pando_get_config(key)``
    dotted lookup (``"lua.timeout"``) in ``config``; missing key -> ``nil``.  Path segments that look
    like secrets (api_key, token, secret, password, credential, private_key) are never returned,
    and such keys are removed from returned sub-tables.
``pando_get_git_status()``
    runs ``git status --porcelain=v1 -z --branch`` in ``workdir`` (``git_timeout`` seconds) and returns
    ``{is_repo, working_dir, branch, upstream, ahead, behind, detached, clean, files = {{status, index,
    worktree, path, orig_path}, ...}}``; outside a repository (or without git) ``{is_repo = false,
    working_dir = ...}``.
``pando_load_file(path)``
    content of a regular file inside ``workdir`` (relative paths are relative to it); returns
    ``nil, message`` for absolute paths outside the workdir, ``..`` escapes, symlinks resolving
    outside, non-regular files, missing files, files larger than ``max_file_size``, and the files
    that may hold secrets which ``pando_get_config`` hides: anything under ``.pando/`` (the
    database, the bus keys) and the config files (``.pando.toml``, ``.pando.json``, the user config).
``pando_list_tools()`` / ``pando_list_mcp_servers()``
    arrays of names from ``tools`` / ``mcp_servers`` (an iterable or a zero-argument callable).
``pando_log(level, msg)``
    ``level`` is debug/info/warn/warning/error; goes to ``log`` if given, else to the engine logger.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LuaHelpers", "HelperRefusal", "SECRET_KEY_PATTERN"]

SECRET_KEY_PATTERN = re.compile(
    r"(api[_-]?key|secret|token|passw(or)?d|credential|private[_-]?key|auth[_-]?header)", re.IGNORECASE
)


class HelperRefusal(Exception):
    """Raised by a helper to make the Lua call return ``nil, message`` instead of raising a Lua error."""


@dataclass
class LuaHelpers:
    workdir: str | os.PathLike[str] | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    tools: Callable[[], Iterable[str]] | Iterable[str] = ()
    mcp_servers: Callable[[], Iterable[str]] | Iterable[str] = ()
    max_file_size: int = 1024 * 1024
    git_timeout: float = 2.0
    # Overrides (None -> the default implementation below).
    get_config: Callable[[str], Any] | None = None
    get_git_status: Callable[[], Mapping[str, Any]] | None = None
    load_file: Callable[[str], Any] | None = None
    list_tools: Callable[[], Iterable[str]] | None = None
    list_mcp_servers: Callable[[], Iterable[str]] | None = None
    log: Callable[[str, str], None] | None = None

    def __post_init__(self) -> None:
        if self.workdir is None:
            self.workdir = os.getcwd()

    # -- bindings -------------------------------------------------------------------------------
    def bindings(self) -> dict[str, Callable[..., Any]]:
        """Python callables for the Lua globals, overrides applied (``pando_log`` excluded)."""
        return {
            "pando_get_config": self.get_config or self.default_get_config,
            "pando_get_git_status": self.get_git_status or self.default_git_status,
            "pando_load_file": self.load_file or self.default_load_file,
            "pando_list_tools": self.list_tools or self.default_list_tools,
            "pando_list_mcp_servers": self.list_mcp_servers or self.default_list_mcp_servers,
        }

    @property
    def root(self) -> Path:
        return Path(os.fspath(self.workdir)).resolve()

    # -- defaults -------------------------------------------------------------------------------
    def default_get_config(self, key: str) -> Any:
        if not isinstance(key, str) or not key.strip():
            raise ValueError("key must be a non-empty string such as 'working_dir' or 'lua.timeout'")
        node: Any = self.config
        for part in key.split("."):
            if SECRET_KEY_PATTERN.search(part):
                return None
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            else:
                return None
        return _plain(node)

    def default_list_tools(self) -> list[str]:
        return _names(self.tools)

    def default_list_mcp_servers(self) -> list[str]:
        return _names(self.mcp_servers)

    def default_load_file(self, path: str) -> bytes:
        if not isinstance(path, str) or not path:
            raise HelperRefusal("path must be a non-empty string")
        if "\x00" in path:
            raise HelperRefusal("invalid path")
        root = self.root
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = root / candidate
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            raise HelperRefusal(f"{path}: no such file") from None
        if real != root and root not in real.parents:
            raise HelperRefusal(f"{path}: outside the working directory")
        if _holds_secrets(real, root):
            raise HelperRefusal(f"{path}: pando's own files and config files are not readable from Lua")
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(real, flags)
        except OSError as e:
            raise HelperRefusal(f"{path}: {e.strerror or e}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise HelperRefusal(f"{path}: not a regular file")
            if st.st_size > self.max_file_size:
                raise HelperRefusal(f"{path}: file larger than {self.max_file_size} bytes")
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = f.read(self.max_file_size + 1)
        finally:
            os.close(fd)
        if len(data) > self.max_file_size:
            raise HelperRefusal(f"{path}: file larger than {self.max_file_size} bytes")
        return data

    def default_git_status(self) -> dict[str, Any]:
        wd = str(self.root)
        env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
        try:
            proc = subprocess.run(
                ["git", "status", "--porcelain=v1", "-z", "--branch"],
                cwd=wd,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.git_timeout,
                check=False,
            )
        except FileNotFoundError:
            return {"is_repo": False, "working_dir": wd, "error": "git is not installed"}
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"git status timed out after {self.git_timeout:g}s") from None
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            return {"is_repo": False, "working_dir": wd, "error": err[0] if err else "git status failed"}
        return _parse_porcelain(proc.stdout, wd)


def _names(source: Callable[[], Iterable[str]] | Iterable[str]) -> list[str]:
    items = source() if callable(source) else source
    return [str(x) for x in items]


def _plain(value: Any, depth: int = 0) -> Any:
    """JSON-like copy of a config value with secret-looking keys removed."""
    if depth > 64:
        raise ValueError("config value nested too deeply")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {
            str(k): _plain(v, depth + 1) for k, v in value.items() if not SECRET_KEY_PATTERN.search(str(k))
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, depth + 1) for v in value]
    return str(value)


_BRANCH_AB = re.compile(r"\[(.*)\]$")


def _parse_porcelain(out: bytes, wd: str) -> dict[str, Any]:
    result: dict[str, Any] = {"is_repo": True, "working_dir": wd, "detached": False}
    files: list[dict[str, Any]] = []
    entries = out.decode("utf-8", "replace").split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if not entry:
            continue
        if entry.startswith("## "):
            _parse_branch(entry[3:], result)
            continue
        code, path = entry[:2], entry[3:]
        item: dict[str, Any] = {"status": code, "index": code[0], "worktree": code[1], "path": path}
        if code[0] in "RC" and i < len(entries):
            item["orig_path"] = entries[i]
            i += 1
        files.append(item)
    result["files"] = files
    result["clean"] = not files
    return result


def _parse_branch(head: str, result: dict[str, Any]) -> None:
    m = _BRANCH_AB.search(head)
    if m:
        head = head[: m.start()].rstrip()
        for part in m.group(1).split(","):
            word, _, num = part.strip().partition(" ")
            if word in ("ahead", "behind") and num.isdigit():
                result[word] = int(num)
    if head.startswith("No commits yet on "):
        result["branch"] = head[len("No commits yet on ") :]
    elif head.startswith("HEAD (no branch)"):
        result["detached"] = True
    else:
        branch, _, upstream = head.partition("...")
        result["branch"] = branch
        if upstream:
            result["upstream"] = upstream


def _holds_secrets(real: Path, root: Path) -> bool:
    """True for `real` (a resolved path) under ``.pando/`` or being a project or user config file."""
    from pando_core.config import project_config_paths, user_config_paths

    private = root / ".pando"
    if real == private or private in real.parents:
        return True
    configs = {p.resolve() for p in (*project_config_paths(root), *user_config_paths())}
    return real in configs
