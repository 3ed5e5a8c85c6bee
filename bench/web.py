"""`pando serve`: how soon a commit elsewhere reaches a page, and the first byte of a big list.

1. Live update: a pando instance (the primary, as a terminal would be) renames a session again and
   again; `pando serve` runs as a secondary, and an SSE client of its ``/api/events`` notes when
   each change arrives. Latency = arrival - the moment the writer's commit returned (one machine,
   one clock). Baseline, in the same run: the same change reaching a plain secondary instance's
   change-event listener (the bus alone). Target: p50/p99 <= 100 ms.
2. List: 10,000 sessions in the database; time to first byte of ``GET /api/sessions`` (one page of
   50) and of the ``/sessions`` page, against a request that touches no database
   (``/static/pando.css``) as the baseline. Target <= 50 ms.

Prints medians, p99 and ratios; ``--json`` prints them as one object.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pando_core.testing.instances import PandoInstance  # noqa: E402
from pando_core.testing.web import WebServerProcess  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANDO_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_RUNTIME_DIR=str(home / ".run"))
    (home / ".run").mkdir(mode=0o700, parents=True, exist_ok=True)
    return env


def live_latency(base: Path, rounds: int) -> dict[str, float]:
    workdir = base / "live"
    workdir.mkdir()
    env = environment(base / "home-live")
    writer = PandoInstance(workdir, env=env, log_path=base / "writer.log").start()
    listener = PandoInstance(workdir, env=env, log_path=base / "listener.log").start()
    server = WebServerProcess(workdir, env, log_path=base / "serve-live.log").start()
    arrivals: dict[str, float] = {}
    ready = threading.Event()
    try:
        assert writer.role == "primary" and server.role == "secondary", (writer.role, server.role)
        session_id = writer.eval("result = app.sessions.create(title='bench')['id']")
        listener.eval(
            "import time\napp.bench_arrivals = []\n"
            "app.runtime.on_event(lambda e, stamp=time.time, seen=app.bench_arrivals: seen.append("
            "(stamp(), e.payload.get('ids') if isinstance(e.payload, dict) else None)), 'db.sessions')\n"
            "result = True"
        )

        def read_events() -> None:
            with httpx.Client(timeout=60) as client, client.stream("GET", server.url + "api/events") as events:
                ready.set()
                for line in events.iter_lines():
                    if line.startswith("data: "):
                        event = json.loads(line[6:])
                        if event.get("table") == "sessions" and event.get("kind") == "update":
                            arrivals.setdefault(f"r{len(arrivals)}", time.time())
                            if len(arrivals) >= rounds:
                                return

        reader = threading.Thread(target=read_events, daemon=True)
        reader.start()
        ready.wait(30)
        time.sleep(0.5)
        committed = []
        for index in range(rounds):
            committed.append(writer.eval(f"import time\napp.sessions.rename({session_id!r}, 'bench {index}')\nresult = time.time()"))
            time.sleep(0.05)  # one change at a time: each arrival is matched to its commit
        reader.join(30)
        bus_arrivals = [t for t, ids in listener.eval("result = app.bench_arrivals") if ids and session_id in ids]
        web = [(arrivals[f"r{i}"] - committed[i]) * 1000 for i in range(min(rounds, len(arrivals)))]
        bus = [(bus_arrivals[i] - committed[i]) * 1000 for i in range(min(rounds, len(bus_arrivals)))]
    finally:
        server.stop()
        listener.stop()
        writer.stop()
    return {
        "live_sse_ms_median": statistics.median(web),
        "live_sse_ms_p99": percentile(web, 0.99),
        "live_bus_ms_median": statistics.median(bus),
        "live_bus_ms_p99": percentile(bus, 0.99),
        "live_ratio": statistics.median(web) / max(statistics.median(bus), 1e-6),
        "live_rounds": len(web),
    }


def fill(workdir: Path, env: dict[str, str], count: int) -> None:
    writer = PandoInstance(workdir, env=env).start()  # creates the database with its migrations
    writer.stop()
    now = int(time.time() * 1000)
    with sqlite3.connect(workdir / ".pando" / "pando.db") as conn:
        conn.executemany(
            "INSERT INTO sessions (id, title, message_count, created_at, updated_at, seq) VALUES (?, ?, 3, ?, ?, ?)",
            [(str(uuid.uuid4()), f"session {i}", now - i * 1000, now - i * 1000, i) for i in range(count)],
        )


def first_byte_ms(client: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    with client.stream("GET", url) as response:
        chunks = response.iter_raw()
        next(chunks)
        elapsed = (time.perf_counter() - started) * 1000
        for _ in chunks:
            pass
    assert response.status_code == 200, (url, response.status_code)
    return elapsed


def list_first_byte(base: Path, count: int, rounds: int) -> dict[str, float]:
    workdir = base / "list"
    workdir.mkdir()
    env = environment(base / "home-list")
    fill(workdir, env, count)
    timings: dict[str, list[float]] = {"api": [], "page": [], "static": []}
    with WebServerProcess(workdir, env, log_path=base / "serve-list.log") as server, httpx.Client(base_url=server.url) as c:
        for _ in range(3):  # warm up
            first_byte_ms(c, "api/sessions")
        for index in range(rounds):
            offset = (index * 50) % count
            timings["static"].append(first_byte_ms(c, "static/pando.css"))
            timings["api"].append(first_byte_ms(c, f"api/sessions?limit=50&offset={offset}"))
            timings["page"].append(first_byte_ms(c, f"sessions?offset={offset}"))
    static = statistics.median(timings["static"])
    return {
        "sessions": count,
        "list_api_first_byte_ms_median": statistics.median(timings["api"]),
        "list_api_first_byte_ms_p99": percentile(timings["api"], 0.99),
        "list_page_first_byte_ms_median": statistics.median(timings["page"]),
        "static_first_byte_ms_median": static,
        "list_api_ratio": statistics.median(timings["api"]) / static,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pando-bench-web-") as tmp:
        base = Path(tmp)
        results = {**live_latency(base, args.rounds), **list_first_byte(base, args.sessions, args.rounds)}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"commit elsewhere -> SSE event: p50 {results['live_sse_ms_median']:.1f} ms, p99 {results['live_sse_ms_p99']:.1f} ms "
          f"(bus alone p50 {results['live_bus_ms_median']:.1f} ms, p99 {results['live_bus_ms_p99']:.1f} ms; "
          f"ratio {results['live_ratio']:.2f}; target <= 100 ms)")
    print(f"{results['sessions']} sessions, first byte: API page p50 {results['list_api_first_byte_ms_median']:.1f} ms "
          f"(p99 {results['list_api_first_byte_ms_p99']:.1f}), HTML page p50 {results['list_page_first_byte_ms_median']:.1f} ms, "
          f"static file p50 {results['static_first_byte_ms_median']:.1f} ms (ratio {results['list_api_ratio']:.2f}; target <= 50 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
