"""Start-up time of `pando --version` and `pando plugins` against `python -c "import typer, pluggy"`.

Prints medians and ratios (targets: --version <= 1.5x, plugins <= 2x the baseline) and checks that
no heavy library (chromadb, lupa, mcp, openai, anthropic, sqlalchemy, zmq) is imported to answer.
`--json` prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("chromadb", "lupa", "mcp", "openai", "anthropic", "sqlalchemy", "zmq")


def interleaved_medians(commands: dict[str, list[str]], runs: int, env: dict[str, str], cwd: str) -> dict[str, float]:
    """Run the commands round-robin so that machine noise hits each of them alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(runs + 1):  # round 0 (fills the plugin cache, compiles .pyc) is not timed
        for name, cmd in commands.items():
            start = time.perf_counter()
            subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            if round_:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def heavy_imports(args: list[str], env: dict[str, str], cwd: str) -> list[str]:
    code = (
        "import sys; sys.argv = ['pando'] + sys.argv[1:]\n"
        "from pando_core.cli import main\n"
        "try:\n    main(sys.argv[1:])\nfinally:\n"
        f"    print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    err = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True).stderr
    line = [row for row in err.splitlines() if row.startswith("HEAVY:")][-1]
    return [m for m in line[len("HEAVY:") :].split(",") if m]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cwd = tempfile.mkdtemp(prefix="pando-bench-")
    env = dict(os.environ, HOME=cwd)
    script = Path(sys.executable).with_name("pando")
    pando = [str(script)] if script.exists() else [sys.executable, "-m", "pando_core"]
    medians = interleaved_medians(
        {
            "baseline": [sys.executable, "-c", "import typer, pluggy"],
            "version": [*pando, "--version"],
            "plugins": [*pando, "plugins"],
        },
        args.runs,
        env,
        cwd,
    )
    baseline, version, plugins = medians["baseline"], medians["version"], medians["plugins"]
    result = {
        "baseline_ms_median": round(baseline * 1000, 1),
        "version_ms_median": round(version * 1000, 1),
        "plugins_ms_median": round(plugins * 1000, 1),
        "version_ratio": round(version / baseline, 2),
        "plugins_ratio": round(plugins / baseline, 2),
        "heavy_imports_version": heavy_imports(["--version"], env, cwd),
        "heavy_imports_plugins": heavy_imports(["plugins"], env, cwd),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"baseline  python -c 'import typer, pluggy'  {result['baseline_ms_median']:7.1f} ms")
        print(f"pando --version                           {result['version_ms_median']:7.1f} ms  ratio {result['version_ratio']} (target <= 1.5)")
        print(f"pando plugins                             {result['plugins_ms_median']:7.1f} ms  ratio {result['plugins_ratio']} (target <= 2.0)")
        print(f"heavy modules imported: --version {result['heavy_imports_version'] or 'none'}, plugins {result['heavy_imports_plugins'] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
