"""Many calls at once through the example hotline: the flow engine and the ACD in one process.

    .venv/bin/python bench/calls.py [--calls 10000] [--agents 500] [--window 10s] [--seed 1]

The example project (flows/ and schemas/) is compiled and its agents replaced by `--agents`
made-up ones who serve every queue with every skill.  All calls dial the hotline within
`--window` on a weekday morning (service hours).  Each caller is unknown to the CRM, so the
hotline plays its greeting and the main menu; the caller presses 0 a second into the menu and
waits for a person.  A rung agent answers after 2 s; the caller talks 30-90 s and hangs up.
Prompts last 3 s.  Callers who wait 5 minutes are turned into callbacks by the queue, as the
project says; their agents call them back, talk as long, and the call ends.

Every input to the CallCenter is timed on its own (start of a call, a key, an answer, a hang-up,
and `advance` to the next timer, prompt end or ACD deadline): that is the latency from an input
to the commands it produces.  Event log rows are taken from the centre as an edge would (and
dropped).  Memory per call is the growth of the resident set from before the first call to the
moment every call is in progress, divided by the calls; `--trace-memory` counts the bytes Python
allocated instead (tracemalloc: slower, so its timings are not the figures).
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import heapq
import itertools
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler import compile_project, ir  # noqa: E402
from runtime import acd_actions as a  # noqa: E402
from runtime import commands as c  # noqa: E402
from runtime.callcenter import CallCenter  # noqa: E402
from runtime.storage import CallEvent  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
START = dt.datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Tuesday, 10:00
MAIN_MENU = "话费余额查询请按1"


def hotline_with_agents(agents: int) -> ir.Bundle:
    result = compile_project([ROOT / "flows", ROOT / "schemas"])
    if result.bundle is None:
        sys.exit("the example project does not compile: run `flowdesk check flows schemas`")
    bundle = result.bundle
    skills = {need.skill: 5 for q in bundle.queues.values() for need in q.skills}
    people = {f"agent{n:04d}": ir.Agent(name=f"agent{n:04d}", skills=skills, queues=list(bundle.queues))
              for n in range(agents)}
    return bundle.model_copy(update={"agents": people})


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


class Bench:
    def __init__(self, bundle: ir.Bundle, seed: int):
        self.center = CallCenter(bundle, epoch=START, prompt_ms=lambda command: 3000)
        self.hotline = next(number for number, flow in bundle.numbers.items() if flow == "hotline")
        self.rng = random.Random(seed)
        self.todo: list = []   # (at, seq, input name, call or agent)
        self.seq = itertools.count()
        self.latencies: dict[str, list[int]] = {}
        self.events = 0
        self.live = 0
        for agent in bundle.agents:
            self.center.login(agent, START)

    def later(self, at: dt.datetime, what: str, who: str) -> None:
        heapq.heappush(self.todo, (at, next(self.seq), what, who))

    def timed(self, what: str, fn, *args) -> None:
        begin = time.perf_counter_ns()
        fn(*args)
        self.latencies.setdefault(what, []).append(time.perf_counter_ns() - begin)
        self.follow(self.center.take_outbox())
        rows = self.center.take_rows()
        self.events += sum(1 for r in rows if isinstance(r, CallEvent) and r.kind == "event")

    def follow(self, outbox) -> None:
        """The phones: the caller presses 0 at the main menu, agents answer, talks end."""
        for media in outbox:
            command = media.command
            if isinstance(command, c.Say) and command.text.startswith(MAIN_MENU):
                self.later(media.at + dt.timedelta(seconds=1), "press", media.call_id)
            elif isinstance(command, a.RingAgent):
                self.later(media.at + dt.timedelta(seconds=2), "answer", command.agent)
            elif isinstance(command, (a.Bridge, a.CallBack)):
                talk = dt.timedelta(seconds=self.rng.uniform(30, 90))
                self.later(media.at + talk, "hang up", media.call_id)
            elif isinstance(command, c.CallEnded):
                self.live -= 1

    def do(self, at: dt.datetime, what: str, who: str) -> None:
        center = self.center
        if what == "start":
            self.live += 1
            self.timed(what, lambda: center.start_call(who, caller=f"139{who[4:]:0>8}", dialed=self.hotline, at=at))
        elif what == "press":
            self.timed(what, center.press, who, "0", at)
        elif what == "answer":
            self.timed(what, center.agent_answers, who, at)
        elif what == "hang up":
            self.timed(what, center.caller_hangs_up, who, at)

    def run(self, calls: int, window: dt.timedelta) -> tuple[float, int]:
        """Drive until nothing is left to do; the wall time and the resident set at the peak."""
        for n in range(calls):
            self.later(START + window * n / calls, "start", f"call{n + 1}")
        peak, begin = 0, time.perf_counter()
        while True:
            mine = self.todo[0][0] if self.todo else None
            theirs = self.center.next_due()
            if theirs is not None and (mine is None or theirs < mine):
                self.timed("advance", self.center.advance, theirs)
            elif mine is not None:
                at, _, what, who = heapq.heappop(self.todo)
                self.do(at, what, who)
            else:
                break
            if self.live == calls and not peak:  # every call started and none ended yet
                peak = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else rss_bytes()
        return time.perf_counter() - begin, peak


def report(label: str, times: list[int]) -> None:
    cuts = statistics.quantiles(times, n=100) if len(times) > 1 else times * 99
    print(f"{label:<15} n={len(times):>7}  p50 {cuts[49] / 1000:7.1f} µs  p99 {cuts[98] / 1000:8.1f} µs  "
          f"max {max(times) / 1000:9.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--window", type=float, default=10.0, help="seconds over which all calls start")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trace-memory", action="store_true", help="memory per call by tracemalloc")
    args = parser.parse_args()
    bundle = hotline_with_agents(args.agents)
    gc.collect()
    if args.trace_memory:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if args.trace_memory else rss_bytes()
    bench = Bench(bundle, args.seed)
    wall, peak = bench.run(args.calls, dt.timedelta(seconds=args.window))
    everything = [t for times in bench.latencies.values() for t in times]
    simulated = bench.center.now - START
    print(f"{args.calls} calls started within {args.window:g} s, {args.agents} agents; "
          f"{simulated.total_seconds() / 60:.0f} simulated minutes in {wall:.1f} s of wall time")
    print(f"engine events {bench.events}: {bench.events / wall:,.0f} per second; "
          f"inputs {len(everything)}: {len(everything) / wall:,.0f} per second")
    for label, times in sorted(bench.latencies.items()):
        report(label, times)
    report("every input", everything)
    if peak:
        kind = "allocated by Python" if args.trace_memory else "resident set"
        print(f"memory: {(peak - before) / args.calls / 1024:.1f} KiB per call in progress "
              f"({kind} {before / 2**20:.0f} MiB before, {peak / 2**20:.0f} MiB with every call on)")
    ended = {}
    for call in bench.center.calls.values():
        ended[call.state.ended] = ended.get(call.state.ended, 0) + 1
    print("how calls ended: " + ", ".join(f"{k} {v}" for k, v in sorted(ended.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
