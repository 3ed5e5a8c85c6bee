"""Team-mode benchmark: writes through pando on PostgreSQL against raw psycopg, and NOTIFY events.

It starts its own PostgreSQL server (``pando_core.testing.postgres``, loopback, stopped at the end)
and measures every figure against a baseline taken in the same run, on the same table:

``serial_write_ratio``
    median latency of one ``store.messages.create`` (pando's write path: the repository's
    @write method, its write key, the NOTIFY of its changes, COMMIT) in one instance process /
    median latency of a raw psycopg ``INSERT`` of the same messages row + ``COMMIT`` in another
    process. The two take turns in ``--rounds`` rounds so drift hits both. Target <= 1.3.
``aggregate_write_ratio``
    messages written per second by 4 instance processes writing at once (each its own workdir,
    one database) / rows per second by 4 processes doing raw INSERT+COMMIT on 4 connections.
    Target >= 0.7.
``event_p99_ms``
    a write's COMMIT in one instance -> ``on_changes`` of a :class:`ChangeListener` in another
    process (its NOTIFY), p99 over ``--events`` writes paced ``--event-pace`` apart: from the
    moment the writer sends the round trip carrying COMMIT to the callback, on ``CLOCK_MONOTONIC``
    (shared by all processes). Target <= 20.

``python bench/postgres.py`` prints a report; ``--json`` one JSON object. The ``--role`` child
processes are the benchmark's own. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

RAW_INSERT = (
    "INSERT INTO messages (id, session_id, role, parts, model, created_at, updated_at, finished_at, seq)"
    " VALUES (%s, %s, 'user', %s, NULL, %s, %s, NULL, %s)"
)
PARTS = [{"type": "text", "text": "hello from the benchmark"}]
TARGETS = {"serial_write_ratio": ("<=", 1.3), "aggregate_write_ratio": (">=", 0.7), "event_p99_ms": ("<=", 20.0)}


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, int(round(q * (len(values) - 1)))))]


# ---------------------------------------------------------------------------------------------
# child roles: each reads commands from stdin, one per line, and answers one JSON line


def _open_instance(url: str, workdir: str):  # noqa: ANN202
    """pando's store on *url*, as an instance in team mode has it: (database, store, session id).
    The core component's repositories, their @write methods, the write key and the NOTIFY."""
    import uuid

    from pando_core.db import LocalExecutor, MethodRegistry, Store, core_component, migrate
    from pando_core.db.settings import DatabaseSettings, open_database

    instance_id = uuid.uuid4().hex[:12]
    db = open_database(Path(workdir), DatabaseSettings(url), writer_id=instance_id)
    component = core_component()
    migrate(db, [component])
    store = Store(MethodRegistry(component.repositories), LocalExecutor(db, instance_id))
    session = store.sessions.create(title="bench")
    return db, store, session["id"]


def _commit_clock() -> list[int]:
    """The writer's COMMIT moments (``CLOCK_MONOTONIC``, shared by every process on Linux):
    when each write's last round trip, the one carrying COMMIT, begins."""
    from pando_core.db.pg_batching import BatchingRaw

    moments: list[int] = [0]
    close = BatchingRaw.close

    def timed_close(self, last):  # noqa: ANN001, ANN202
        if last == "COMMIT":
            moments.append(time.monotonic_ns())
        return close(self, last)

    BatchingRaw.close = timed_close
    return moments


def serve_writes(write: Callable[[], object], more: dict[str, Callable[[int], None]] | None = None) -> None:
    """Say ready, then obey ``serial N`` (N timed writes: their latencies), ``burst N`` (N writes:
    start and end) and the commands in *more*, one per stdin line, until stdin closes."""
    emit({"ready": os.getpid()})
    for line in sys.stdin:
        command, _, count = line.strip().partition(" ")
        n = int(count or 0)
        if command == "serial":
            lat = []
            for _ in range(n):
                t0 = time.perf_counter_ns()
                write()
                lat.append(time.perf_counter_ns() - t0)
            emit({"lat": lat})
        elif command == "burst":
            t0 = time.perf_counter()
            for _ in range(n):
                write()
            emit({"burst": n, "start": t0, "end": time.perf_counter()})
        elif more and command in more:
            more[command](n)


def role_pando(args: argparse.Namespace) -> None:
    db, store, session_id = _open_instance(args.url, args.workdir)
    create = store.messages.create
    for _ in range(20):  # warm: statement preparation, the first key
        create(session_id=session_id, role="user", parts=PARTS)
    def events(n: int) -> None:
        commits = _commit_clock()
        sent = {}
        for i in range(n):
            message_id = f"e{i}"
            create(session_id=session_id, role="user", parts=PARTS, id=message_id)
            sent[message_id] = commits[-1]
            time.sleep(args.pace)
        emit({"events": n, "commits": sent})

    serve_writes(lambda: create(session_id=session_id, role="user", parts=PARTS), {"events": events})
    db.dispose()


def role_raw(args: argparse.Namespace) -> None:
    import psycopg

    from pando_core.db.pg_changes import libpq_conninfo
    from pando_core.ids import new_id

    conn = psycopg.connect(libpq_conninfo(args.url))
    session_id = args.session
    seq = [int(time.time() * 1000) * 1000 + os.getpid() % 1000]  # unique across processes, like pando's seq
    parts = json.dumps(PARTS)

    def insert() -> None:
        now = int(time.time() * 1000)
        seq[0] += 1
        conn.execute(RAW_INSERT, (new_id(), session_id, parts, now, now, seq[0]))
        conn.commit()

    for _ in range(20):
        insert()
    serve_writes(insert)
    conn.close()


def role_listener(args: argparse.Namespace) -> None:
    from pando_core.db.pg_changes import ChangeListener

    arrivals: dict[str, int] = {}

    def on_changes(changes, writer) -> None:  # noqa: ANN001
        now = time.monotonic_ns()
        for change in changes:
            if change.table == "messages":
                arrivals.update((i, now) for i in change.ids if i.startswith("e"))

    listener = ChangeListener(args.url, on_changes, lambda: None).start()
    emit({"ready": os.getpid()})
    for _line in sys.stdin:
        emit({"arrivals": arrivals})
    listener.close()


# ---------------------------------------------------------------------------------------------
# parent side


class Child:
    def __init__(self, role: str, *extra: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE), "--role", role, *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, text=True, bufsize=1, env=env, cwd=str(ROOT),
        )
        self.role = role

    def ask(self, line: str | None = None, timeout: float = 300) -> dict:
        if line is not None:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the {self.role} child exited ({self.proc.poll()})")
        return json.loads(answer)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self.proc.wait()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        from pando_core.testing.postgres import PostgresServer

        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="pando-bench-pg-"))
        self.server_dir = Path(tempfile.mkdtemp(prefix="pando-bench-pgdata-"))  # owned by the server's user
        self.server = PostgresServer(self.server_dir).start()
        self.url = self.server.create_database("bench")
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        self.children: list[Child] = []
        self._workdirs = 0

    def child(self, role: str, *extra: str) -> Child:
        child = Child(role, "--url", self.url, *extra, env=self.env)
        self.children.append(child)
        ready = child.ask()
        assert "ready" in ready, ready
        return child

    def instance(self) -> Child:
        self._workdirs += 1
        workdir = self.tmp / f"w{self._workdirs}"
        workdir.mkdir()
        return self.child("pando", "--workdir", str(workdir), "--pace", str(self.args.event_pace))

    def raw(self) -> Child:
        return self.child("raw", "--session", self.session_id())

    def session_id(self) -> str:
        import psycopg

        from pando_core.db.pg_changes import libpq_conninfo

        with psycopg.connect(libpq_conninfo(self.url)) as conn:
            return conn.execute("SELECT id FROM sessions ORDER BY seq LIMIT 1").fetchone()[0]

    def close(self) -> None:
        for child in self.children:
            child.stop()
        self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        shutil.rmtree(self.server_dir, ignore_errors=True)

    # -- figures ---------------------------------------------------------------------------------

    def serial(self) -> dict:
        pando = self.instance()  # first: it migrates the database the raw writer inserts into
        raw = self.raw()
        per_round = max(1, self.args.writes // self.args.rounds)
        pando_lat: list[int] = []
        raw_lat: list[int] = []
        for _ in range(self.args.rounds):
            raw_lat += raw.ask(f"serial {per_round}")["lat"]
            pando_lat += pando.ask(f"serial {per_round}")["lat"]
        pando_us = statistics.median(pando_lat) / 1000
        raw_us = statistics.median(raw_lat) / 1000
        self.serial_pando = pando
        return {
            "serial_write_us_median": round(pando_us, 1),
            "raw_insert_commit_us_median": round(raw_us, 1),
            "serial_write_p99_us": round(percentile(pando_lat, 0.99) / 1000, 1),
            "serial_write_ratio": round(pando_us / raw_us, 3),
        }

    def _burst_rate(self, children: list[Child], n: int) -> float:
        answers: list[dict] = [{}] * len(children)

        def run(i: int) -> None:
            answers[i] = children[i].ask(f"burst {n}")

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(children))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        start = min(a["start"] for a in answers)
        end = max(a["end"] for a in answers)
        return sum(a["burst"] for a in answers) / (end - start)

    def aggregate(self) -> dict:
        procs = self.args.agg_procs
        pandos = [self.instance() for _ in range(procs)]
        raws = [self.raw() for _ in range(procs)]
        pando_rates, raw_rates = [], []
        for _ in range(self.args.agg_rounds):
            raw_rates.append(self._burst_rate(raws, self.args.agg_count))
            pando_rates.append(self._burst_rate(pandos, self.args.agg_count))
        pando_rate = statistics.median(pando_rates)
        raw_rate = statistics.median(raw_rates)
        return {
            "aggregate_processes": procs,
            "aggregate_writes_per_s": round(pando_rate),
            "raw_aggregate_writes_per_s": round(raw_rate),
            "aggregate_write_ratio": round(pando_rate / raw_rate, 3),
        }

    def events(self) -> dict:
        listener = self.child("listener")
        writer = getattr(self, "serial_pando", None) or self.instance()
        commits = writer.ask(f"events {self.args.events}", timeout=600)["commits"]
        deadline = time.monotonic() + 5
        while True:
            arrivals = listener.ask("report")["arrivals"]
            if len(arrivals) >= self.args.events or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        latencies = [(arrivals[i] - commits[i]) / 1e6 for i in commits if i in arrivals]
        return {
            "events": self.args.events,
            "events_lost": self.args.events - len(latencies),
            "event_ms_median": round(statistics.median(latencies), 3) if latencies else None,
            "event_p99_ms": round(percentile(latencies, 0.99), 3) if latencies else float("inf"),
        }


def report(result: dict) -> str:
    lines = ["pando team mode on PostgreSQL (bench/postgres.py)"]
    for key, value in result.items():
        if key != "targets_met":
            lines.append(f"  {key:32} {value}")
    for key, met in result.get("targets_met", {}).items():
        op, target = TARGETS[key]
        lines.append(f"  target {key} {op} {target}: {'met' if met else 'MISSED'}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--writes", type=int, default=2000, help="serial writes to time, each way")
    parser.add_argument("--rounds", type=int, default=8, help="turns the serial writes are split into")
    parser.add_argument("--agg-procs", type=int, default=4)
    parser.add_argument("--agg-count", type=int, default=500, help="writes per process per aggregate round")
    parser.add_argument("--agg-rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--event-pace", type=float, default=0.002, help="seconds between event writes")
    parser.add_argument("--only", choices=("serial", "aggregate", "events"), action="append")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--session", help=argparse.SUPPRESS)
    parser.add_argument("--pace", type=float, default=0.002, help=argparse.SUPPRESS)
    args = parser.parse_args()
    roles = {"pando": role_pando, "raw": role_raw, "listener": role_listener}
    if args.role:
        roles[args.role](args)
        return 0

    bench = Bench(args)
    result: dict = {"cpus": os.cpu_count()}
    only = set(args.only or ("serial", "aggregate", "events"))
    try:
        if "serial" in only:
            result.update(bench.serial())
        if "events" in only:
            result.update(bench.events())
        if "aggregate" in only:
            result.update(bench.aggregate())
    finally:
        bench.close()
    result["targets_met"] = {
        key: (result[key] <= target if op == "<=" else result[key] >= target)
        for key, (op, target) in TARGETS.items() if key in result
    }
    if result.get("events_lost"):
        result["targets_met"]["event_p99_ms"] = False
    print(json.dumps(result) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
