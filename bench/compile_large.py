"""Check + compile time and peak memory for a project of a 5,000-step flow and 200 entities.

    .venv/bin/python bench/compile_large.py [--steps 5000] [--entities 200] [--repeat 5]

Prints the wall time of `compile_project` (parse, resolve, check, lower, bundle, and the bundle's
JSON): the first compile of the process (cold: only the parser has been built before it, as a
long-running process builds it once) and the best and median of all runs; then the peak memory
Python allocated during one compile (tracemalloc, measured in a separate run so that tracing does
not slow the timed runs).
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
from dsl.parser import parse  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--entities", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_project(Path(tmp), args.steps, args.entities)
        parse("")  # builds the parser, once per process
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = compile_project([root])
            if not result.ok:
                raise SystemExit("the generated project does not compile: " + result.errors[0].headline())
            to_json(result.bundle)
            times.append(time.perf_counter() - start)
        steps = sum(len(f.steps) for f in result.bundle.flows.values())
        tracemalloc.start()
        compile_project([root])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(f"project: {steps} flow steps, {len(result.bundle.entities)} entities, "
          f"{sum(len(s.splitlines()) for s in (f.text for f in result.sources.files.values()))} source lines")
    print(f"check+compile: first (cold) {times[0]:.3f} s; best {min(times):.3f} s, median {statistics.median(times):.3f} s"
          f" over {args.repeat} runs")
    print(f"peak memory allocated during one compile: {peak / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
