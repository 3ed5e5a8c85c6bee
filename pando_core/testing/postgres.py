"""A real PostgreSQL server for tests and benchmarks: the Debian server binaries, on loopback.

``PostgresServer(directory).start()`` runs ``initdb`` (trust authentication, no fsync: test data
needs no durability across a power cut) and ``pg_ctl start`` on a free 127.0.0.1 port with the
socket in *directory*. As root the server runs as the ``postgres`` user (PostgreSQL refuses to run
as root). ``stop()`` stops it and, if ``pg_ctl`` cannot, kills the postmaster by the pid it wrote;
``restart()`` is the nemesis of the reliability tests. ``create_database()`` gives each test its
own database and returns its SQLAlchemy URL.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ..runtime.instances import pid_alive as _alive

SUPERUSER = "postgres"


def find_bindir() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: ``$PANDO_TEST_PG_BINDIR``, Debian's
    ``/usr/lib/postgresql/<newest>/bin``, or wherever ``initdb`` is on PATH."""
    explicit = os.environ.get("PANDO_TEST_PG_BINDIR")
    if explicit:
        return Path(explicit)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major_version, reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _major_version(initdb_path: str) -> int:
    try:
        return int(Path(initdb_path).parent.parent.name)
    except ValueError:
        return 0


@contextlib.contextmanager
def temporary_server(prefix: str = "pando-pg-") -> Iterator[PostgresServer]:
    """A started server in a new directory of its own, stopped (by pid if need be) and removed
    after the block. Not under pytest's tmp dir: that is private to root, and the server runs as
    ``postgres``."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    server = PostgresServer(directory).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self, directory: Path, *, bindir: Path | None = None, port: int | None = None) -> None:
        self.directory = Path(directory)
        self.data_dir = self.directory / "data"
        self.log_path = self.directory / "server.log"
        self.bindir = bindir or find_bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.port = port or free_port()
        self._as_postgres = os.geteuid() == 0

    # -- the server's life -----------------------------------------------------------------------

    def start(self, timeout: float = 30) -> PostgresServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.directory, SUPERUSER, SUPERUSER)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb", "-D", str(self.data_dir), "-A", "trust", "-U", SUPERUSER, "--no-sync",
                "-E", "UTF8", "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C",
                timeout=timeout,
            )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(self.log_path), "-w",
            "-t", str(int(timeout)), "start", timeout=timeout + 5,
        )
        return self

    def stop(self, timeout: float = 20) -> None:
        pid = self.pid()
        if pid is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", str(int(timeout)), "stop",
                      timeout=timeout + 5)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        if self.pid() is not None:  # pg_ctl could not: end it by the pid it wrote
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the postmaster (its backends exit as they notice): a crashed server."""
        pid = self.pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)

    def restart(self) -> None:
        self.stop()
        self.start()

    def pid(self) -> int | None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _alive(pid) else None

    # -- databases -------------------------------------------------------------------------------

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    # -- helpers ---------------------------------------------------------------------------------

    def _run(self, program: str, *args: str, timeout: float) -> None:
        command = [str(self.bindir / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd="/")
        if result.returncode != 0:
            log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()}\n{log}")


def _has_c_utf8() -> bool:
    return Path("/usr/lib/locale/C.utf8").exists() or Path("/usr/lib/locale/C.UTF-8").exists()
