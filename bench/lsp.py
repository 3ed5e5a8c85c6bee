"""What pando-lsp adds to an edit: the diagnostics wait with a warm server, and the cold start.

Against a real python-lsp-server (pyflakes) in a temporary directory: each round rewrites a Python
file (alternately with and without an undefined name) and times ``LspManager.check`` - didChange,
didSave and the wait for that version's publishDiagnostics - which is what an edit/write tool
result waits for. The baseline, measured in the same run, is the edit's own file I/O (write the
text, read it back). The cold start is the first check of a fresh manager (server spawn,
initialize, didOpen, first diagnostics), against the floor of spawning a bare Python process.
Also timed: ``LspManager.baseline`` of the file right after its check, which is what the edit
before it costs when the server already answered for the file's text (the usual case in a turn).
`--json` prints {"warm_wait_ms_median", "io_baseline_ms_median", "warm_ratio", "cold_start_ms_median",
"spawn_baseline_ms_median", "cold_ratio", "known_baseline_ms_median", "rounds"}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pando_lsp.config import ServerSpec
from pando_lsp.manager import LspManager

TEXTS = ("def f():\n    return missing_name\n", "def f():\n    return 42\n")


def pylsp_spec() -> ServerSpec:
    command = Path(sys.executable).parent / "pylsp"
    if not command.exists():
        sys.exit("error: python-lsp-server is not installed: pip install 'python-lsp-server[pyflakes]'")
    return ServerSpec("pylsp", str(command), [], [".py"])


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def measure(rounds: int, cold_rounds: int) -> dict:
    spec = pylsp_spec()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        target = workdir / "mod.py"
        target.write_text(TEXTS[0])
        cold, spawn = [], []
        for _ in range(cold_rounds):
            began = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            spawn.append(time.perf_counter() - began)
            manager = LspManager(workdir, [spec], 60000)
            began = time.perf_counter()
            report = manager.run(manager.check(target), 70)
            cold.append(time.perf_counter() - began)
            manager.shutdown()
            assert report.answered, report.notice
        manager = LspManager(workdir, [spec], 60000)
        manager.run(manager.check(target), 70)  # warm it
        warm, io, known = [], [], []
        for index in range(rounds):
            text = TEXTS[index % 2]
            began = time.perf_counter()
            target.write_text(text)
            target.read_text()
            io.append(time.perf_counter() - began)
            began = time.perf_counter()
            report = manager.run(manager.check(target), 70)
            warm.append(time.perf_counter() - began)
            began = time.perf_counter()
            before = manager.run(manager.baseline(target), 70)  # the next edit's "before": already known
            known.append(time.perf_counter() - began)
            if before != report.diagnostics:
                sys.exit(f"error: round {index}: the known baseline {before} is not the last report")
            if not report.answered or bool(report.diagnostics) != (index % 2 == 0):
                sys.exit(f"error: round {index}: unexpected report {report}")
        manager.shutdown()
    warm_ms, io_ms = ms(statistics.median(warm)), ms(statistics.median(io))
    cold_ms, spawn_ms = ms(statistics.median(cold)), ms(statistics.median(spawn))
    return {
        "warm_wait_ms_median": warm_ms,
        "io_baseline_ms_median": io_ms,
        "warm_ratio": round(warm_ms / io_ms, 1),
        "cold_start_ms_median": cold_ms,
        "spawn_baseline_ms_median": spawn_ms,
        "cold_ratio": round(cold_ms / spawn_ms, 1),
        "known_baseline_ms_median": ms(statistics.median(known)),
        "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="warm edits to time")
    parser.add_argument("--cold-rounds", type=int, default=3, help="fresh server starts to time")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    result = measure(args.rounds, args.cold_rounds)
    if args.json:
        print(json.dumps(result))
        return
    print(f"warm: diagnostics wait per edit {result['warm_wait_ms_median']} ms (median of {args.rounds}); "
          f"the edit's own I/O {result['io_baseline_ms_median']} ms; ratio {result['warm_ratio']}x")
    print(f"cold: first file (server start + first diagnostics) {result['cold_start_ms_median']} ms; "
          f"bare process spawn {result['spawn_baseline_ms_median']} ms; ratio {result['cold_ratio']}x")
    print(f"before an edit: the file's known diagnostics {result['known_baseline_ms_median']} ms (median)")


if __name__ == "__main__":
    main()
