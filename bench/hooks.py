"""Benchmark: dispatch overhead of one hook call with three plugins (event and pipeline).

Measures, in the same run and interleaved:
  * ``plugins.hooks.pando_message_created(...)`` (an event) and
    ``plugins.hooks.pando_rewrite_prompt(...)`` (a pipeline), each implemented by three plugins
    whose implementations do nothing but return;
  * the baseline: the same three implementation functions called directly in a loop, with the
    same keyword arguments (what any dispatcher has to do at least).

The overhead per call is the dispatched median minus the direct median (both per hook call of
three plugins). Target: <= 20 us per call.

    python bench/hooks.py [--iterations N] [--rounds R] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pando_core import hookimpl  # noqa: E402
from pando_core.plugins import Plugins  # noqa: E402


def make_plugin(index: int):
    class Plugin:
        @hookimpl
        def pando_message_created(self, app, message):
            return None

        @hookimpl
        def pando_rewrite_prompt(self, app, session_id, prompt):
            return prompt if index % 2 else None

    return Plugin()


def per_call_us(fn, iterations: int) -> float:
    started = time.perf_counter()
    for _ in range(iterations):
        fn()
    return (time.perf_counter() - started) / iterations * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20000, help="calls per round and variant")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    opts = parser.parse_args(argv)

    plugins = Plugins()
    implementations = [make_plugin(i) for i in range(3)]
    for i, plugin in enumerate(implementations):
        plugins.register(plugin, f"p{i}")
    hooks = plugins.hooks
    message = {"id": "m", "role": "user", "parts": []}

    def event():
        hooks.pando_message_created(app=None, message=message)

    def pipeline():
        hooks.pando_rewrite_prompt(app=None, session_id="s", prompt="hello")

    def direct_event():
        for plugin in implementations:
            plugin.pando_message_created(app=None, message=message)

    def direct_pipeline():
        value = "hello"
        for plugin in implementations:
            result = plugin.pando_rewrite_prompt(app=None, session_id="s", prompt=value)
            if result is not None:
                value = result

    samples: dict[str, list[float]] = {name: [] for name in ("event", "pipeline", "direct_event", "direct_pipeline")}
    for fn in (event, pipeline, direct_event, direct_pipeline):
        per_call_us(fn, 2000)  # warm-up
    for _ in range(opts.rounds):
        for name, fn in (("event", event), ("direct_event", direct_event), ("pipeline", pipeline), ("direct_pipeline", direct_pipeline)):
            samples[name].append(per_call_us(fn, opts.iterations))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    result = {
        "plugins": 3,
        "event_us_median": round(medians["event"], 3),
        "pipeline_us_median": round(medians["pipeline"], 3),
        "direct_event_us_median": round(medians["direct_event"], 3),
        "direct_pipeline_us_median": round(medians["direct_pipeline"], 3),
        "event_overhead_us": round(medians["event"] - medians["direct_event"], 3),
        "pipeline_overhead_us": round(medians["pipeline"] - medians["direct_pipeline"], 3),
        "event_ratio": round(medians["event"] / medians["direct_event"], 2),
        "pipeline_ratio": round(medians["pipeline"] / medians["direct_pipeline"], 2),
        "target_us": 20,
    }
    if opts.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:28} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
