"""Cost of the bash read-only check, which runs on every bash tool call.

Medians (microseconds) of `classify(command, workdir)` for a few typical commands, against two
baselines measured in the same run: `shlex.split` of the same command (tokenising alone) and
starting `bash -c true` (what every bash call costs anyway). `--json` prints the figures.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "simple": "ls -la",
    "git": "git log --oneline -20 -- src",
    "pipeline": "cat README.md | grep -n foo | sort | uniq -c | head -20",
    "compound": "cd src && find . -name '*.py' -type f | xargs wc -l; git status --short 2>/dev/null",
    "glob": "wc -l src/*.py",
    "refused": "sort -uo /tmp/out README.md",
}


def median_us(function, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from pando_core.agent.tools.shell_safety import classify

    workdir = Path(tempfile.mkdtemp(prefix="pando-bench-shell-"))
    (workdir / "src").mkdir()
    for index in range(40):
        (workdir / "src" / f"m{index}.py").write_text("x = 1\n")
    (workdir / "README.md").write_text("foo\n")

    results: dict[str, dict[str, float]] = {}
    for label, command in COMMANDS.items():
        classify(command, workdir)  # warm up
        check = median_us(lambda command=command: classify(command, workdir), args.rounds)
        tokens = median_us(lambda command=command: shlex.split(command), args.rounds)
        results[label] = {
            "classify_us": round(check, 1),
            "shlex_us": round(tokens, 1),
            "ratio": round(check / tokens, 2),
        }
    spawn = median_us(lambda: subprocess.run(["bash", "-c", "true"], check=True), max(20, args.rounds // 100))
    worst = max(r["classify_us"] for r in results.values())
    summary = {
        "commands": results,
        "bash_spawn_us": round(spawn, 1),
        "worst_vs_spawn": round(worst / spawn, 4),
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{'command':10} {'classify us':>12} {'shlex us':>9} {'ratio':>6}")
    for label, row in results.items():
        print(f"{label:10} {row['classify_us']:12.1f} {row['shlex_us']:9.1f} {row['ratio']:6.2f}")
    print(f"bash -c true: {spawn:.0f} us; slowest check / spawn = {summary['worst_vs_spawn']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
