"""The floor under bench/ipc.py's two write ratios: the least a correct proxied write costs here.

A deliberately minimal write proxy -- no pando code, no validation, no events, no failover -- that
still does what makes a proxied write correct: JSON-RPC request and reply, one transaction holding
the row (with the real ``sessions`` indexes) and its idempotency record, the reply after COMMIT.
Measured with the same formulas and baselines as bench/ipc.py, in the same run:

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
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.abspath(__file__)
SCHEMA = [
    """CREATE TABLE sessions (id TEXT PRIMARY KEY, parent_session_id TEXT, title TEXT NOT NULL,
    message_count INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
    total_prompt_tokens INTEGER NOT NULL, total_completion_tokens INTEGER NOT NULL, cost REAL NOT NULL,
    summary_message_id TEXT, model TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    seq INTEGER NOT NULL)""",
    "CREATE INDEX idx_sessions_order ON sessions (created_at, seq)",
    "CREATE INDEX idx_sessions_seq ON sessions (seq)",
    """CREATE TABLE applied_writes (instance_id TEXT NOT NULL, seq INTEGER NOT NULL, method TEXT NOT NULL,
    ok INTEGER NOT NULL, result TEXT, created_at INTEGER NOT NULL, PRIMARY KEY (instance_id, seq))""",
]
INSERT_ROW = (
    "INSERT INTO sessions VALUES (:id, NULL, :title, 0, 0, 0, 0, 0, 0.0, NULL, NULL, :created_at, :created_at, :seq)"
)
INSERT_KEY = "INSERT INTO applied_writes VALUES (?, ?, ?, 1, ?, ?)"


def open_db(path: str, schema: list[str]) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for statement in schema:
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


def serve(endpoint: str, db_path: str, mode: str) -> None:
    """``echo``: send every message back (round-trip baseline); ``write``: the minimal proxy."""
    import zmq

    db = open_db(db_path, SCHEMA) if mode == "write" else None
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.bind(endpoint)
    print("ready", flush=True)
    seq = 0
    while True:
        batch = [router.recv_multipart()]
        while len(batch) < 256:
            try:
                batch.append(router.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
        if any(frames[-1] == b"quit" for frames in batch):
            break
        if db is None:
            for frames in batch:
                router.send_multipart(frames)
            continue
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
            db.execute(INSERT_ROW, row)
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

    def work(t: int) -> None:
        dealer = ctx.socket(zmq.DEALER)
        dealer.connect(endpoint)
        for i in range(count):
            dealer.send_multipart([b"", request(f"{t}-{i}", f"{instance}-{t}", i)])
            json.loads(dealer.recv_multipart()[-1])
        dealer.close(0)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
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
    dealer.send_multipart([b"", b"quit"])
    proc.wait(10)
    dealer.close(0)
    ctx.term()


def serial(tmp: str, mode: str, n: int) -> float:
    """Median round trip (ms) of *n* requests, one at a time, to a server in *mode*."""
    import zmq

    endpoint = f"ipc://{tmp}/{mode}.sock"
    server = start("--serve", endpoint, "--db", f"{tmp}/{mode}.db", "--mode", mode)
    ctx = zmq.Context()
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect(endpoint)
    times = []
    for i in range(n + n // 5):
        data = request(f"s-{i}", "serial", i)
        t0 = time.perf_counter_ns()
        dealer.send_multipart([b"", data])
        reply = dealer.recv_multipart()[-1]
        if mode == "write":
            json.loads(reply)
        if i >= n // 5:
            times.append(time.perf_counter_ns() - t0)
    dealer.close(0)
    ctx.term()
    stop_server(endpoint, server)
    return statistics.median(times) / 1e6


def raw_commit(tmp: str, n: int) -> tuple[float, float]:
    """Median single-row commit (ms) and back-to-back commits/s, as bench/ipc.py measures them."""
    db = open_db(f"{tmp}/raw.db", SCHEMA[:1])
    times = []
    begun = time.perf_counter_ns()
    for i in range(n):
        t0 = time.perf_counter_ns()
        db.execute("BEGIN IMMEDIATE")
        db.execute(INSERT_ROW, {"id": f"raw-{i}", "title": "raw", "created_at": i, "seq": i})
        db.execute("COMMIT")
        times.append(time.perf_counter_ns() - t0)
    rate = n / ((time.perf_counter_ns() - begun) / 1e9)
    db.close()
    return statistics.median(times) / 1e6, rate


def aggregate(tmp: str, procs: int, threads: int, count: int) -> float:
    endpoint = f"ipc://{tmp}/agg.sock"
    server = start("--serve", endpoint, "--db", f"{tmp}/agg.db", "--mode", "write")
    clients = [
        subprocess.Popen(
            [sys.executable, HERE, "--clients", endpoint, "--threads", str(threads), "--count", str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(procs)
    ]
    time.sleep(0.5)  # let the interpreters start; the clock starts at "go" in each client
    for c in clients:
        c.stdin.write("go\n")
        c.stdin.flush()
    spans = [json.loads(c.stdout.readline()) for c in clients]
    for c in clients:
        c.wait(30)
    stop_server(endpoint, server)
    elapsed = (max(s["end"] for s in spans) - min(s["start"] for s in spans)) / 1e9
    return procs * threads * count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--writes", type=int, default=3000)
    parser.add_argument("--agg-count", type=int, default=300, help="writes per client thread")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--clients", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=16, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.db, args.mode)
        return 0
    if args.clients:
        write_clients(args.clients, args.threads, args.count)
        return 0
    tmp = tempfile.mkdtemp(prefix="pando-floor-")
    rtt = serial(tmp, "echo", args.writes)
    write = serial(tmp, "write", args.writes)
    commit_ms, commit_rate = raw_commit(tmp, args.writes)
    rate = aggregate(tmp, 4, 16, args.agg_count)
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
