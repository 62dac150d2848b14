"""Check + compile time and peak memory for a project of a 5,000-step flow and 200 entities.

    .venv/bin/python bench/compile_large.py [--steps 5000] [--entities 200] [--repeat 5]

Prints the best and median wall time of `compile_project` (parse, resolve, check, lower, bundle)
and the peak memory Python allocated during one compile (tracemalloc, measured in a separate run
so that tracing does not slow the timed runs).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.generate import write_project  # noqa: E402
from compiler import compile_project  # noqa: E402
from compiler.bundle import to_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--entities", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_project(Path(tmp), args.steps, args.entities)
        result = compile_project([root])  # warm-up: builds the parser once, as a long-running process would
        if not result.ok:
            raise SystemExit("the generated project does not compile: " + result.errors[0].headline())
        steps = sum(len(f.steps) for f in result.bundle.flows.values())
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = compile_project([root])
            to_json(result.bundle)
            times.append(time.perf_counter() - start)
        tracemalloc.start()
        compile_project([root])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(f"project: {steps} flow steps, {len(result.bundle.entities)} entities, "
          f"{sum(len(s.splitlines()) for s in (f.text for f in result.sources.files.values()))} source lines")
    print(f"check+compile: best {min(times):.3f} s, median {statistics.median(times):.3f} s over {args.repeat} runs")
    print(f"peak memory allocated during one compile: {peak / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
