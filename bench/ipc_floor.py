"""The floor under bench/ipc.py's two write ratios: the least a correct proxied write costs here.

A deliberately minimal write proxy -- no pando code, no validation, no events, no failover -- that
still does what makes a proxied write correct: JSON-RPC request and reply, one transaction holding
the row (with the real ``sessions`` indexes) and its idempotency record, the reply after COMMIT.
It waits for messages the way pando does (a short spin before sleeping, for a lone call).
Measured with the same formulas, and with bench/ipc.py's own baseline code (fresh process pairs,
pooled), in the same run:

``floor_serial_ratio``
    median minimal proxied write / (raw DEALER/ROUTER round trip + raw single-row commit).
``floor_aggregate_ratio``
    writes/s of the minimal server with 4 client processes x 16 threads (one DEALER per thread,
    the server committing whatever arrived together as one transaction) / direct commits/s.

If a floor is above bench/ipc.py's target, no Python implementation of this design reaches the
target on this machine; the gap between pando's figure and the floor is what is left to win.
``python bench/ipc_floor.py [--json]``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import threading
import time

from ipc import (  # bench/ipc.py: table, baselines, warm-up
    DEFAULT_AGG_COUNT,
    SESSIONS_DDL,
    SESSIONS_INSERT,
    WARM_WRITES,
    Bench,
)

from pando_core.runtime import bus as pando_bus  # only their wait settings
from pando_core.runtime import client as pando_client
from pando_core.runtime.sockets import yield_core as give_way

HERE = os.path.abspath(__file__)
# the sessions table as bench/ipc.py's baseline has it, plus what a real write also maintains:
# the table's indexes and the idempotency record
SCHEMA = [
    SESSIONS_DDL,
    "CREATE INDEX idx_sessions_order ON sessions (created_at, seq)",
    "CREATE INDEX idx_sessions_seq ON sessions (seq)",
    """CREATE TABLE applied_writes (instance_id TEXT NOT NULL, seq INTEGER NOT NULL, method TEXT NOT NULL,
    ok INTEGER NOT NULL, result TEXT, created_at INTEGER NOT NULL, PRIMARY KEY (instance_id, seq)) WITHOUT ROWID""",
]
INSERT_KEY = "INSERT INTO applied_writes VALUES (?, ?, ?, 1, ?, ?)"
# the same waiting as pando's: the floor must not lose to pando by sleeping where pando stays awake
SPIN_SERVER_S = pando_bus.SPIN_SECONDS
SPIN_CLIENT_S = pando_client.SPIN_SECONDS


def open_db(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for statement in SCHEMA:
        db.execute(statement)
    return db


def request(rid: str, instance: str, seq: int) -> bytes:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": rid,
            "method": "db.write",
            "params": {"method": "sessions.create", "params": {"title": f"t {seq}"}, "key": [instance, seq]},
            "meta": {"instance_id": instance, "timeout_ms": 30000},
        }
    ).encode()


# -- child processes -------------------------------------------------------------------------


def serve(endpoint: str, db_path: str) -> None:
    """The minimal write proxy."""
    import zmq

    db = open_db(db_path)
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.bind(endpoint)
    print("ready", flush=True)
    seq = 0
    while True:
        # wait as pando's bus does: poll without sleeping for a while after a burst, then block
        spin_until = time.perf_counter() + SPIN_SERVER_S
        while not router.poll(0) and time.perf_counter() < spin_until:
            give_way()  # as pando's spin does (runtime/sockets.spin_poll)
        batch = [router.recv_multipart()]
        while len(batch) < 256:
            try:
                batch.append(router.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
        if any(frames[-1] == b"quit" for frames in batch):
            break
        replies = []
        db.execute("BEGIN IMMEDIATE")
        for frames in batch:
            req = json.loads(frames[-1])
            instance, key = req["params"]["key"]
            if db.execute("SELECT ok FROM applied_writes WHERE instance_id = ? AND seq = ?", (instance, key)).fetchone():
                continue  # the benchmark never repeats a key
            seq += 1
            now = time.time_ns() // 1_000_000
            row = {"id": f"{instance}-{key}", "title": req["params"]["params"]["title"], "created_at": now, "seq": seq}
            db.execute("SAVEPOINT w")
            db.execute(SESSIONS_INSERT, (row["id"], row["title"], now, now, seq))
            result = json.dumps(row)
            db.execute(INSERT_KEY, (instance, key, "sessions.create", result, now))
            db.execute("RELEASE w")
            replies.append([*frames[:-1], b'{"jsonrpc":"2.0","id":%s,"result":%s}' % (json.dumps(req["id"]).encode(), result.encode())])
        db.execute("COMMIT")
        for reply in replies:
            router.send_multipart(reply)
    router.close(0)
    ctx.term()


def write_clients(endpoint: str, threads: int, count: int) -> None:
    import zmq

    ctx = zmq.Context()
    instance = f"c{os.getpid()}"

    dealers = []
    for _ in range(threads):  # connected before "go": connecting is not part of the timed run
        dealer = ctx.socket(zmq.DEALER)
        dealer.connect(endpoint)
        dealers.append(dealer)

    def work(t: int) -> None:
        dealer = dealers[t]
        for i in range(count):
            dealer.send_multipart([request(f"{t}-{i}", f"{instance}-{t}", i)])
            json.loads(dealer.recv_multipart()[-1])
        dealer.close(0)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.monotonic_ns()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps({"start": start, "end": time.monotonic_ns()}), flush=True)
    ctx.term()


# -- parent ----------------------------------------------------------------------------------


def start(*args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, HERE, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{args[0]} did not start")
    return proc


def stop_server(endpoint: str, proc: subprocess.Popen) -> None:
    import zmq

    ctx = zmq.Context()
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect(endpoint)
    dealer.send_multipart([b"quit"])
    proc.wait(10)
    dealer.close(0)
    ctx.term()


def serial_client(endpoint: str, n: int) -> None:
    """*n* writes, one at a time, through the minimal proxy (after a warm-up as bench/ipc.py's
    writer has); prints their times (ns)."""
    import zmq

    ctx = zmq.Context()
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect(endpoint)
    times = []
    warm = max(n // 5, WARM_WRITES)
    for i in range(n + warm):
        data = request(f"s-{i}", "serial", i)
        t0 = time.perf_counter_ns()
        dealer.send_multipart([data])
        spin_until = time.perf_counter() + SPIN_CLIENT_S  # as a lone pando call waits for its reply
        while not dealer.poll(0) and time.perf_counter() < spin_until:
            give_way()
        json.loads(dealer.recv_multipart()[-1])
        if i >= warm:
            times.append(time.perf_counter_ns() - t0)
    dealer.close(0)
    ctx.term()
    print(json.dumps(times), flush=True)


def floor_writes(tmp: str, n: int, pair: int) -> list[int]:
    """A fresh minimal proxy and a fresh client process: *n* serial writes (ns each)."""
    endpoint = f"ipc://{tmp}/write-{pair}.sock"
    server = start("--serve", endpoint, "--db", f"{tmp}/write-{pair}.db")
    client = subprocess.Popen(
        [sys.executable, HERE, "--serial-client", endpoint, "--count", str(n)], stdout=subprocess.PIPE, text=True
    )
    times = json.loads(client.stdout.readline())
    client.wait(30)
    stop_server(endpoint, server)
    return times


def aggregate(tmp: str, procs: int, threads: int, count: int) -> float:
    endpoint = f"ipc://{tmp}/agg.sock"
    server = start("--serve", endpoint, "--db", f"{tmp}/agg.db")
    clients = [
        start("--clients", endpoint, "--threads", str(threads), "--count", str(count)) for _ in range(procs)
    ]
    for c in clients:
        c.stdin.write("go\n")
        c.stdin.flush()
    spans = [json.loads(c.stdout.readline()) for c in clients]
    for c in clients:
        c.wait(30)
    stop_server(endpoint, server)
    elapsed = (max(s["end"] for s in spans) - min(s["start"] for s in spans)) / 1e9
    with contextlib.closing(sqlite3.connect(f"file:{tmp}/agg.db?mode=ro", uri=True)) as db:
        committed = db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    return committed / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--writes", type=int, default=3000)
    parser.add_argument("--agg-count", type=int, default=DEFAULT_AGG_COUNT, help="writes per client thread")
    parser.add_argument("--pairs", type=int, default=4, help="fresh process pairs the serial writes and round trips are spread over")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--serial-client", help=argparse.SUPPRESS)
    parser.add_argument("--clients", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=16, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.db)
        return 0
    if args.clients:
        write_clients(args.clients, args.threads, args.count)
        return 0
    if args.serial_client:
        serial_client(args.serial_client, args.count)
        return 0
    baselines = Bench(argparse.Namespace(transport="ipc"))
    tmp = baselines.tmp
    try:
        # as bench/ipc.py measures its serial ratio: fresh process pairs on both sides, in turns, pooled
        writes, rtts, _ = baselines.pooled_pairs(
            lambda n, pair: floor_writes(tmp, n, pair), args.pairs, args.writes
        )
        write = statistics.median(writes) / 1e6
        rtt = statistics.median(rtts) / 1e6
        commit_ms, _ = baselines.sqlite_commit(args.writes)
        rate = aggregate(tmp, 4, 16, args.agg_count)
        _, commit_rate = baselines.sqlite_commit(max(2000, min(64 * args.agg_count, 20000)))
    finally:
        baselines.close()
    result = {
        "zmq_rtt_ms_median": round(rtt, 4),
        "sqlite_commit_ms_median": round(commit_ms, 4),
        "floor_write_ms_median": round(write, 4),
        "floor_serial_ratio": round(write / (rtt + commit_ms), 3),
        "floor_writes_per_s": round(rate, 1),
        "direct_commits_per_s": round(commit_rate, 1),
        "floor_aggregate_ratio": round(rate / commit_rate, 3),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"serial floor   : {write:.3f} ms per minimal proxied write vs zmq round trip {rtt:.3f} ms + sqlite "
        f"commit {commit_ms:.3f} ms -> ratio {result['floor_serial_ratio']} (bench/ipc.py target <= 1.5)"
    )
    print(
        f"aggregate floor: {rate:.0f} writes/s (4 procs x 16 threads) vs {commit_rate:.0f} direct commits/s -> "
        f"ratio {result['floor_aggregate_ratio']} (bench/ipc.py target >= 0.6)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
