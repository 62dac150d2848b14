"""`flowdesk test`: run flow test files and report like pytest, with flow coverage on request;
`--from-call` writes the test file of a logged call instead."""
from __future__ import annotations

import sys
from pathlib import Path

from compiler import CompileResult, ir
from runtime import flowtest, replay
from runtime.scenario import ScenarioError, load_tests

EXIT_USAGE = 2


def run(result: CompileResult, files: list[Path], show_coverage: bool, root: Path) -> int:
    outcomes, broken = [], 0
    for path in files:
        try:
            tests = load_tests(path)
        except ScenarioError as error:
            print(f"ERROR {error}", file=sys.stderr)
            broken += 1
            continue
        for test in tests:
            outcome = flowtest.run_test(result.bundle, test, path)
            outcomes.append(outcome)
            print(f"{_shown(path, root)}::{test.name} {'PASSED' if outcome.passed else 'FAILED'}")
    failed = [o for o in outcomes if not o.passed]
    for o in failed:
        print(f"\n___ {_shown(o.path, root)}::{o.test.name} (line {o.test.line}) ___")
        print(f"{o.error.step}: {o.error}")
        print("call transcript:")
        for line in o.transcript:
            print(f"    {line}")
    passed = len(outcomes) - len(failed)
    print(f"\n{passed} passed, {len(failed)} failed" + (f", {broken} files with errors" if broken else ""))
    if show_coverage:
        print_coverage(result, outcomes, root)
    return 1 if failed or broken or not outcomes else 0


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def print_coverage(result: CompileResult, outcomes, root: Path) -> None:
    report = flowtest.coverage(result.bundle, outcomes)
    print("\nflow coverage (steps and branches reached by the tests)")
    width = max((len(r.flow) for r in report), default=4)
    print(f"{'flow'.ljust(width)}  {'steps':>9}  {'branches':>9}  {'cover':>6}")
    for r in report:
        steps = f"{len(r.steps) - len(r.missed_steps)}/{len(r.steps)}"
        branches = f"{len(r.branches) - len(r.missed_branches)}/{len(r.branches)}"
        print(f"{r.flow.ljust(width)}  {steps:>9}  {branches:>9}  {r.percent:5.1f}%")
    for r in report:
        places = result.source_map.get(r.flow, {})
        line = lambda step: places[step][1].line if step in places else 0  # noqa: E731
        for step in sorted(r.missed_steps, key=line):
            print(f"  missed step   {_place(places, step)} {r.flow}/{step}")
        for source, target in sorted(r.missed_branches, key=lambda b: (line(b[0]), line(b[1]))):
            print(f"  missed branch {_place(places, source)} {r.flow}/{source} -> {target}")
    total = sum(len(r.steps) + len(r.branches) for r in report)
    missed = sum(len(r.missed_steps) + len(r.missed_branches) for r in report)
    print(f"TOTAL {100.0 * (total - missed) / total if total else 100.0:.1f}%")


def _place(places, step_id: str) -> str:
    if step_id not in places:
        return ""
    file, pos = places[step_id]
    return f"{file}:{pos.line}:"


def from_call(bundle: ir.Bundle, call_id: str, database_url: str, output: str | None, force: bool) -> int:
    """Print or write the test of one logged call.  An existing file is kept unless `force`: it may
    be a test someone has since edited."""
    target = Path(output) if output not in (None, "-") else None
    if target is not None and target.exists() and not force:
        print(f"error: {target} already exists; give --force to replace it", file=sys.stderr)
        return EXIT_USAGE
    try:
        call, rows = replay.read_call(database_url, call_id)
    except replay.ReplayError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    made = replay.from_call(call, rows, bundle)
    for warning in made.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    text = replay.to_yaml(made, call)
    if target is None:
        sys.stdout.write(text)
        return 0
    from flowdesk.cli import write_atomically

    write_atomically(target, text)
    steps = len(made.test_file["tests"][0]["steps"])
    print(f"wrote {target} ({steps} steps)", file=sys.stderr)
    return 0
