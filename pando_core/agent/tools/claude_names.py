"""Claude Code's tool names and pando's: hook matchers and command ``allowed-tools`` written for
Claude Code name its tools (``Bash``, ``Edit|Write``); pando's tools take the same arguments
(``command``, ``file_path``, ``old_string``...) under other names.

A name with no counterpart (an MCP tool, a plugin's tool) is used as it is.
"""

from __future__ import annotations

CLAUDE_TO_PANDO: dict[str, tuple[str, ...]] = {
    "Bash": ("bash",),
    "Read": ("view",),
    "Write": ("write",),
    "Edit": ("edit",),
    "MultiEdit": ("edit", "patch"),
    "Glob": ("glob",),
    "Grep": ("grep",),
    "LS": ("ls",),
    "WebFetch": ("fetch",),
    "Task": ("agent",),
}

PANDO_TO_CLAUDE: dict[str, str] = {"bash": "Bash", "view": "Read", "write": "Write", "edit": "Edit", "patch": "MultiEdit",
                                   "glob": "Glob", "grep": "Grep", "ls": "LS", "fetch": "WebFetch", "agent": "Task"}


def claude_name(pando_name: str) -> str:
    """The name Claude Code gives this tool (pando's own name when it has none)."""
    return PANDO_TO_CLAUDE.get(pando_name, pando_name)


def pando_names(name: str) -> tuple[str, ...]:
    """The pando tools a Claude Code tool name stands for (the name itself when it is pando's)."""
    return CLAUDE_TO_PANDO.get(name, (name,))
