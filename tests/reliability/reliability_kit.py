"""Helpers for the reliability tests: worker processes, read-only DB checks, the history checker.

``Cluster.spawn(name, *flags)`` starts ``worker.py`` (see its docstring for the JSON-lines
protocol); every line it prints is collected by a reader thread, and ``Worker.wait(...)`` blocks
on a condition variable until a matching line arrives or a deadline passes.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

WORKER = str(Path(__file__).with_name("worker.py"))
ROOT = str(Path(__file__).resolve().parents[2])


class Worker:
    def __init__(self, name: str, proc: subprocess.Popen) -> None:
        self.name = name
        self.proc = proc
        self.lines: list[dict] = []
        self.stderr: list[str] = []
        self.cond = threading.Condition()
        self.killed_at_m: int | None = None  # monotonic_ns just before SIGKILL was sent
        self.eof = False
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_stdout(self) -> None:
        for raw in self.proc.stdout:
            try:
                rec = json.loads(raw)
            except ValueError:
                rec = {"ev": "raw", "text": raw.rstrip("\n")}
            with self.cond:
                self.lines.append(rec)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def _read_stderr(self) -> None:
        for raw in self.proc.stderr:
            self.stderr.append(raw.rstrip("\n"))

    # -- queries ---------------------------------------------------------------------------------
    def events(self, ev: str | None = None) -> list[dict]:
        with self.cond:
            return [r for r in self.lines if ev is None or r.get("ev") == ev]

    def count(self, ev: str) -> int:
        with self.cond:
            return sum(1 for r in self.lines if r.get("ev") == ev)

    def wait(
        self, pred: Callable[[dict], bool] | str, timeout: float = 15.0, start: int = 0, what: str = ""
    ) -> dict:
        """First line (from index *start*) matching *pred* (or whose ``ev`` equals it)."""
        if isinstance(pred, str):
            ev = pred
            pred = lambda r: r.get("ev") == ev  # noqa: E731
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    rec = self.lines[i]
                    i += 1
                    if rec.get("ev") == "crash":
                        pytest.fail(f"worker {self.name} crashed:\n{rec.get('error')}")
                    if pred(rec):
                        return rec
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.eof and i >= len(self.lines)):
                    break
                self.cond.wait(min(remaining, 0.25))
        pytest.fail(
            f"worker {self.name} (pid {self.pid}, rc={self.proc.poll()}): no {what or 'matching line'} within {timeout}s\n"
            f"last lines: {self.lines[-5:]}\nstderr: {self.stderr[-20:]}"
        )

    def mark(self) -> int:
        with self.cond:
            return len(self.lines)

    # -- commands -------------------------------------------------------------------------------
    def send(self, **cmd: Any) -> None:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def command(self, wait_s: float = 15.0, **cmd: Any) -> dict:
        """Send a command and wait for its reply line."""
        tag = f"{cmd.get('op')}-{time.monotonic_ns()}"
        start = self.mark()
        self.send(tag=tag, **cmd)
        return self.wait(
            lambda r: r.get("ev") == "reply" and r.get("tag") == tag, wait_s, start, what=f"reply to {cmd}"
        )

    def close_stdin(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if sig == signal.SIGKILL:
            self.killed_at_m = time.monotonic_ns()
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def reap(self, timeout: float = 10.0) -> int:
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(timeout)
        return rc


class Cluster:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.workers: list[Worker] = []

    def spawn(
        self, name: str, *flags: str, config: dict | None = None, workdir: Path | None = None
    ) -> Worker:
        argv = [sys.executable, WORKER, "--workdir", str(workdir or self.workdir), "--id", name]
        if config:
            argv += ["--config", json.dumps(config)]
        proc = subprocess.Popen(
            [*argv, *flags],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=self.env,
            cwd=ROOT,
        )
        worker = Worker(name, proc)
        self.workers.append(worker)
        return worker

    def by_pid(self, pid: int) -> Worker | None:
        return next((w for w in self.workers if w.pid == pid), None)

    def teardown(self) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.kill()
        for w in self.workers:
            try:
                w.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            for stream in (w.proc.stdin, w.proc.stdout, w.proc.stderr):
                try:
                    if stream:
                        stream.close()
                except OSError:
                    pass


def primary_record(workdir: Path) -> dict | None:
    try:
        return json.loads((workdir / ".pando" / "primary.json").read_text())
    except (OSError, ValueError):
        return None


def db_rows(workdir: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Query ``.pando/pando.db`` through a read-only sqlite3 connection (the test's own view)."""
    path = workdir / ".pando" / "pando.db"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# Jepsen-style checker


def writer_intervals(workers: list[Worker], kills: dict[int, dict]) -> list[dict]:
    """One interval per process that ever won the lock: from the moment flock returned to the
    last moment it acted as primary (tick, primary-role ack, promotion, ready as primary)."""
    intervals = []
    for w in workers:
        locks = w.events("lock")
        if not locks:
            continue
        assert len(locks) == 1, f"{w.name} won the lock {len(locks)} times"
        start = locks[0]["m"]
        epoch = None
        end = start
        for r in w.events():
            role = r.get("role")
            primary_claim = (
                r["ev"] == "tick"
                or (r["ev"] in ("ready", "role") and role == "primary")
                or (r["ev"] == "ok" and role == "primary")
            )
            if primary_claim:
                end = max(end, r["m"])
                if r.get("epoch") is not None:
                    epoch = r["epoch"] if epoch is None else epoch
                    assert r["epoch"] == epoch, (
                        f"{w.name} changed epoch while primary: {epoch} -> {r['epoch']}"
                    )
        if epoch is None and w.pid in kills:
            epoch = kills[w.pid]["epoch"]
        intervals.append(
            {
                "name": w.name,
                "pid": w.pid,
                "start": start,
                "end": end,
                "epoch": epoch,
                "killed_at": w.killed_at_m,
            }
        )
    intervals.sort(key=lambda i: i["start"])
    return intervals


def check_single_writer(workers: list[Worker], kills: dict[int, dict]) -> list[dict]:
    intervals = writer_intervals(workers, kills)
    for prev, cur in zip(intervals, intervals[1:], strict=False):
        assert cur["start"] > prev["end"], f"writer intervals overlap: {prev} and {cur}"
        if prev["killed_at"] is not None:
            assert cur["start"] > prev["killed_at"], (
                f"{cur['name']} won the lock before {prev['name']} was killed"
            )
        assert prev["epoch"] is not None and cur["epoch"] is not None, (prev, cur)
        assert cur["epoch"] > prev["epoch"], f"epochs do not increase: {prev} then {cur}"
    return intervals


def postgres_rows(url: str) -> Callable[..., list[tuple]]:
    """A ``rows(sql, params)`` query function on the PostgreSQL database *url* (team mode's
    counterpart of :func:`db_rows`), for :func:`check_writes`."""
    import psycopg

    from pando_core.db.pg_changes import libpq_conninfo

    def rows(sql: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(libpq_conninfo(url)) as conn:
            return conn.execute(sql.replace("?", "%s"), params or None).fetchall()

    return rows


def check_writes(workers: list[Worker], workdir: Path | None, rows: Callable[..., list[tuple]] | None = None) -> dict[str, int]:
    """Every acknowledged write is in the database exactly once; nothing definitively rejected
    or never invoked is; ambiguous writes are there at most once; counters are consistent.
    *rows* queries the database (default: the SQLite file of *workdir*)."""
    if rows is None:
        def rows(sql: str, params: tuple = ()) -> list[tuple]:
            return db_rows(workdir, sql, params)

    invoked: set[str] = set()
    acked: list[str] = []
    definitive: set[str] = set()
    ambiguous: set[str] = set()
    for w in workers:
        for r in w.events():
            if r["ev"] == "invoke":
                invoked.add(r["key"])
            elif r["ev"] == "ok" and "n" in r:
                acked.append(r["key"])
            elif r["ev"] == "fail":
                assert r.get("kind") != "constraint", f"a write collided with itself (applied twice?): {r}"
                (definitive if r.get("definitive") else ambiguous).add(r["key"])
    assert len(acked) == len(set(acked)), "a write was acknowledged twice"
    acked_set = set(acked)
    # keys invoked but neither acked nor failed were in flight when their writer was killed
    in_flight = invoked - acked_set - definitive - ambiguous

    session_ids = [row[0] for row in rows("SELECT id FROM sessions WHERE title LIKE 'write %'")]
    message_tags = []
    for session_id, parts in rows("SELECT session_id, parts FROM messages"):
        for part in json.loads(parts):
            if part.get("type") == "text":
                tag = part["text"]
                writer, _, n = tag.rpartition("-")
                assert session_id == f"{writer}-{int(n) - 1}", f"message {tag} stored in session {session_id}"
                message_tags.append(tag)
    stored = session_ids + message_tags
    counts: dict[str, int] = {}
    for key in stored:
        counts[key] = counts.get(key, 0) + 1
    duplicated = {k: n for k, n in counts.items() if n > 1}
    assert not duplicated, f"stored more than once: {sorted(duplicated)[:20]}"
    missing = sorted(k for k in acked_set if counts.get(k, 0) != 1)
    assert not missing, f"{len(missing)} acknowledged writes are missing, e.g. {missing[:20]}"
    rejected_present = sorted(k for k in definitive if k in counts)
    assert not rejected_present, f"definitively rejected writes are present: {rejected_present[:20]}"
    never_invoked = sorted(k for k in counts if k not in invoked)
    assert not never_invoked, f"rows nobody wrote: {never_invoked[:20]}"
    # message_count (updated in the same transaction as each message insert) matches the rows
    mismatched = rows(
        "SELECT s.id, s.message_count, (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id) AS n "
        "FROM sessions s WHERE s.message_count != (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id)",
    )
    assert not mismatched, f"message_count disagrees with the messages table: {mismatched[:10]}"
    return {
        "invoked": len(invoked),
        "acked": len(acked_set),
        "definitive_failures": len(definitive),
        "ambiguous_failures": len(ambiguous),
        "in_flight_at_kill": len(in_flight),
        "ambiguous_present": sum(1 for k in ambiguous | in_flight if k in counts),
        "stored": len(stored),
    }
