"""Error types shared across the core; each has a `kind` that survives the IPC wire."""

from __future__ import annotations

from typing import Any


def one_line(text: Any, limit: int = 100) -> str:
    """`text` (an exception, a tool result...) on one line of at most `limit` characters: whitespace
    collapsed, cut with "…". Here, in a module with no imports, so that anything can use it."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class PandoError(Exception):
    """Base for errors shown to the user as one line (never a traceback)."""

    kind = "error"
    exit_code = 1


class UsageError(PandoError):
    """Bad command-line usage or configuration (exit code 2)."""

    kind = "usage"
    exit_code = 2


class ConfigError(UsageError):
    kind = "config"


class TurnStopped(UsageError):
    """A hook ended the agent's turn on purpose (a shell hook's ``"continue": false``); it is not a
    tool failure, so the loop lets it through to end the turn."""

    kind = "stopped"


class NotFoundError(PandoError):
    kind = "not_found"


class ConstraintError(PandoError):
    kind = "constraint"


class ValidationError(PandoError):
    kind = "validation"


class UnavailableError(PandoError):
    """The primary (or another service) cannot be reached."""

    kind = "unavailable"


class StorageFullError(PandoError):
    """The device holding ``.pando/`` is full: nothing was written (see ``pando_core.db.storage``)."""

    kind = "no_space"


ERROR_KINDS: dict[str, type[PandoError]] = {
    cls.kind: cls
    for cls in (
        PandoError,
        UsageError,
        ConfigError,
        NotFoundError,
        ConstraintError,
        ValidationError,
        UnavailableError,
        StorageFullError,
    )
}


def error_from_kind(kind: str, message: str) -> PandoError:
    """Rebuild an error of the right class from a kind received over the wire."""
    return ERROR_KINDS.get(kind, PandoError)(message)
