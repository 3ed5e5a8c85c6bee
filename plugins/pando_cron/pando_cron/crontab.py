"""The user's crontab: add or remove one job's entry, leaving every other line as it was.

An entry is two lines, in the Go original's format, so that either implementation manages the
other's entries::

    # pando-cronjob:daily-review
    0 9 * * 1-5 cd '/home/me/project' && '/home/me/.venv/bin/pando' cronjob run daily-review

(``pando cronjob`` is ``pando cron`` under the Go name.) Installing again replaces the entry;
uninstalling removes the marker and the line after it. The crontab is read and written with the
``crontab`` program (``-u USER`` for another user's, which needs root).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from pando_core.errors import NotFoundError, PandoError, UsageError

MARKER = "# pando-cronjob:"


def marker(name: str) -> str:
    return f"{MARKER}{name}"


def quote(text: str) -> str:
    """Single-quoted for sh (a quote inside becomes '\\'')."""
    return "'" + str(text).replace("'", "'\\''") + "'"


def entry(name: str, schedule: str, workdir: Path, binary: str) -> list[str]:
    return [marker(name), f"{schedule} cd {quote(workdir)} && {quote(binary)} cronjob run {name}"]


def pando_binary() -> str:
    """The pando program cron should run: this one."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "pando" and argv0.exists():
        return str(argv0.resolve())
    found = shutil.which("pando")
    if found:
        return str(Path(found).resolve())
    raise UsageError("cannot find the pando program to put in the crontab (is it on PATH?)")


def _crontab(args: list[str], user: str | None, stdin: str | None = None) -> subprocess.CompletedProcess:
    program = shutil.which("crontab")
    if program is None:
        raise UsageError("the crontab program is not installed (Debian/Ubuntu: apt-get install cron)")
    command = [program, *(["-u", user] if user else []), *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=30, check=False)


def read(user: str | None = None) -> str:
    """The crontab's text ("" when there is none)."""
    done = _crontab(["-l"], user)
    if done.returncode != 0:
        if "no crontab" in done.stderr.lower():
            return ""
        raise PandoError(f"crontab -l failed: {done.stderr.strip() or done.returncode}")
    return done.stdout


def write(text: str, user: str | None = None) -> None:
    done = _crontab(["-"], user, stdin=text)
    if done.returncode != 0:
        raise PandoError(f"crontab refused the new table: {done.stderr.strip() or done.returncode}")


def without(text: str, name: str) -> tuple[str, bool]:
    """*text* without *name*'s entry (its marker and the line after it); and whether it had one."""
    lines = text.splitlines()
    kept: list[str] = []
    found = False
    skip_next = False
    for line in lines:
        if skip_next:
            skip_next = False
            continue
        if line.strip() == marker(name):
            found = True
            skip_next = True
            continue
        kept.append(line)
    out = "\n".join(kept)
    return (out + "\n" if out else ""), found


def with_entry(text: str, name: str, lines: list[str]) -> str:
    """*text* with *name*'s entry replaced by (or added as) *lines*, at the end."""
    rest, _ = without(text, name)
    return rest + "\n".join(lines) + "\n"


def install(
    name: str, schedule: str, workdir: Path, *, user: str | None = None, dry_run: bool = False
) -> tuple[list[str], str]:
    """Add or replace the entry; returns its lines and the new crontab (not written if *dry_run*)."""
    lines = entry(name, schedule, workdir, pando_binary())
    new = with_entry(read(user), name, lines)
    if not dry_run:
        write(new, user)
    return lines, new


def uninstall(name: str, *, user: str | None = None) -> None:
    new, found = without(read(user), name)
    if not found:
        raise NotFoundError(f"the crontab has no entry for cron job {name!r} (no line {marker(name)!r})")
    write(new, user)
