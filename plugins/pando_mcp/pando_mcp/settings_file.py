"""``pando mcp add`` / ``remove``: edit ``[mcp.servers.NAME]`` of the project's ``.pando.toml``.

tomlkit keeps everything else of the file as it was: other tables, comments, blank lines, order.
The file is replaced atomically (written beside it, then renamed).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pando_core.errors import UsageError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _pairs(items: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} takes KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def _load(path: Path):  # noqa: ANN202 - a tomlkit document
    import tomlkit

    if not path.exists():
        return tomlkit.document()
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - tomlkit's parse errors have no common base
        raise UsageError(f"{path}: not valid TOML ({exc})") from None


def _save(path: Path, document) -> None:  # noqa: ANN001
    import tomlkit

    temporary = path.with_name(path.name + ".tmp")
    text = tomlkit.dumps(document).rstrip("\n")  # a removed table leaves its blank line behind
    temporary.write_text(text + "\n" if text else "", encoding="utf-8")
    os.replace(temporary, path)


def add_server(
    workdir: Path,
    name: str,
    *,
    command: list[str],
    url: str = "",
    transport: str = "",
    env: list[str] = (),
    headers: list[str] = (),
    timeout: str = "",
) -> Path:
    import tomlkit

    if not _NAME.match(name):
        raise UsageError(f"server name {name!r}: use letters, digits, '-', '_' or '.'")
    if bool(command) == bool(url):
        raise UsageError("give either a command after -- or --url URL")
    kind = transport.lower() if transport else ("http" if url else "stdio")
    if kind not in ("stdio", "http", "sse") or (url and kind == "stdio") or (command and kind != "stdio"):
        raise UsageError(f"--transport {transport!r}: use http or sse with --url (commands are stdio)")
    path = workdir / ".pando.toml"
    document = _load(path)
    mcp = document.setdefault("mcp", tomlkit.table(is_super_table=True))
    servers = mcp.setdefault("servers", tomlkit.table(is_super_table=True))
    if name in servers:
        raise UsageError(f"{path}: MCP server {name!r} already exists (pando mcp remove {name} first)")
    entry = tomlkit.table()
    entry["type"] = kind
    if command:
        entry["command"] = command[0]
        entry["args"] = command[1:]
    else:
        entry["url"] = url
    if env:
        entry["env"] = _pairs(list(env), "--env")
    if headers:
        entry["headers"] = _pairs(list(headers), "--header")
    if timeout:
        from .config import parse_timeout

        parse_timeout(timeout, "--timeout")
        entry["timeout"] = timeout
    servers[name] = entry
    _save(path, document)
    return path


def remove_server(workdir: Path, name: str) -> Path:
    path = workdir / ".pando.toml"
    document = _load(path)
    servers = document.get("mcp", {}).get("servers", {})
    if name not in servers:
        where = " (it is declared in .mcp.json; edit that file)" if _in_mcp_json(workdir, name) else ""
        raise UsageError(f"{path}: no MCP server {name!r}{where}")
    del servers[name]
    if not servers:
        del document["mcp"]["servers"]
        if not document["mcp"]:
            del document["mcp"]
    _save(path, document)
    return path


def _in_mcp_json(workdir: Path, name: str) -> bool:
    from .config import read_mcp_json

    try:
        return name in read_mcp_json(workdir)
    except UsageError:
        return False
