"""Which database a working directory uses: SQLite in ``.pando/`` or, in team mode, PostgreSQL.

``[database] url`` (or ``PANDO_DATABASE__URL``) starting with ``postgresql`` is team mode. The
password comes from the URL, from the variable ``[database] password_env`` names, or from libpq's
own environment (``PGPASSWORD``, ``~/.pgpass``), which psycopg reads by itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["DatabaseSettings", "database_settings", "open_database"]


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = ""  # "" = SQLite in <workdir>/.pando/pando.db
    password: str | None = None

    @property
    def team(self) -> bool:
        return is_team_url(self.url)

    def describe(self) -> str:
        """Where the data is, for people (no password)."""
        if not self.team:
            return "SQLite (.pando/pando.db)"
        from ..config import redact_url

        return "PostgreSQL " + redact_url(self.url)


def is_team_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("postgresql", "postgres:"))


def database_settings(section: Mapping[str, Any] | None, env: Mapping[str, str] | None = None) -> DatabaseSettings:
    """The settings of a ``[database]`` section (a dict from the configuration)."""
    section = dict(section or {})
    env = os.environ if env is None else env
    url = str(section.get("url") or "").strip()
    if url and not is_team_url(url):
        raise ConfigError(f"[database] url must be a PostgreSQL URL (postgresql+psycopg://...), not {url.split('://')[0]}://")
    password = None
    password_env = str(section.get("password_env") or "").strip()
    if password_env:
        password = env.get(password_env)
        if not password:
            raise ConfigError(f"[database] password_env names {password_env}, which is not set")
    return DatabaseSettings(url, password)


def open_database(workdir: Path, settings: DatabaseSettings | None = None, *, readonly: bool = False, writer_id: str = ""):
    """The working directory's database: SQLite (read-only on a secondary) or, in team mode,
    PostgreSQL, always read-write."""
    if settings is not None and settings.team:
        from .postgres import PostgresDatabase

        return PostgresDatabase(settings.url, password=settings.password, writer_id=writer_id)
    from . import database_path
    from .engine import Database

    return Database(database_path(workdir), readonly=readonly)
