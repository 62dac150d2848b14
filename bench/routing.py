"""Routing decision time of the ACD with 2,000 agents and 5,000 waiting calls.

    .venv/bin/python bench/routing.py [--agents 2000] [--waiting 5000] [--samples 20000] [--seed 1]

The centre has two halves.  In the busy half (10 queues, one per strategy twice over) every agent
is on a call and the calls wait in line; in the quiet half (10 more queues) agents are ready.  Each
agent serves 3 queues of their half and has skills at random levels.  Timed, one input at a time:

- agent freed:  a busy-half call ends, the agent is offered the best of the heads of their queues
- call placed:  a call arrives in the quiet half and is offered to the strategy's choice of agent
- call queued:  a call arrives in the busy half and joins its line (place found among thousands)
- announce:     a position/wait announcement deadline fires for a waiting call

Each figure is the wall time of the whole ACD input (the decision plus its bookkeeping and the
actions it returns).  Untimed inputs between samples keep the centre at its size.  The maximum
includes CPython's cycle-collector pauses (tens of ms for a full collection), which have
nothing to do with routing, and whatever else the machine is doing.
"""
from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler import ir  # noqa: E402
from runtime.acd import Acd  # noqa: E402
from runtime.acd_actions import RingAgent  # noqa: E402

STRATEGIES = ["longest_idle", "fewest_calls", "round_robin", "skills", "preferred"]
SKILLS = ["billing", "mobile", "broadband", "english"]


def build_centre(agents: int, rng: random.Random) -> tuple[dict[str, ir.Queue], dict[str, ir.Agent]]:
    queues = {}
    for half in ("busy", "quiet"):
        for i in range(10):
            strategy = STRATEGIES[i % len(STRATEGIES)]
            needs = [ir.SkillNeed(skill=SKILLS[i % len(SKILLS)], min_level=1)] if strategy == "skills" else []
            queues[f"{half}{i}"] = ir.Queue(name=f"{half}{i}", strategy=strategy, skills=needs, priority=i % 3,
                                            announce_position_ms=60_000, announce_wait_ms=60_000,
                                            ring_timeout_ms=3_600_000)
    people = {}
    for n in range(agents):
        half = "busy" if n % 2 == 0 else "quiet"
        member_of = rng.sample([f"{half}{i}" for i in range(10)], 3)
        skills = {s: rng.randint(1, 5) for s in SKILLS}
        people[f"agent{n}"] = ir.Agent(name=f"agent{n}", queues=member_of, skills=skills)
    return queues, people


class Centre:
    def __init__(self, agents: int, waiting: int, seed: int):
        self.rng = random.Random(seed)
        queues, people = build_centre(agents, self.rng)
        self.acd = Acd(queues, people)
        self.now = 0
        self.calls = 0
        self.connected: list[str] = []  # calls in talk in the busy half
        for name in people:
            self.acd.login(self.tick(), name)
        busy_agents = sum(1 for n in people if int(n[5:]) % 2 == 0)
        for _ in range(busy_agents + waiting):
            self.answer_all(self.acd.enqueue(self.tick(), self.new_call(), self.busy_queue(), priority=self.priority()))

    def tick(self) -> int:
        self.now += 1
        return self.now

    def new_call(self) -> str:
        self.calls += 1
        return f"call{self.calls}"

    def busy_queue(self) -> str:
        return f"busy{self.rng.randrange(10)}"

    def priority(self) -> int:
        return 5 if self.rng.random() < 0.1 else 0

    def answer_all(self, actions) -> None:
        """Busy-half agents answer whatever rings (only busy-half calls reach them)."""
        for action in actions:
            if isinstance(action, RingAgent):
                self.acd.answer(self.now, action.call_id)
                self.connected.append(action.call_id)

    def end_any_call(self) -> str:
        i = self.rng.randrange(len(self.connected))
        self.connected[i], self.connected[-1] = self.connected[-1], self.connected[i]
        return self.connected.pop()

    def waiting(self) -> int:
        return sum(len(self.acd.waiting(f"busy{i}")) for i in range(10))


def timed(centre: Centre, now: int, fn) -> tuple[int, object]:
    """Times `fn` alone: deadlines due before `now` (announcements) are fired first, untimed."""
    centre.acd.advance(now)
    start = time.perf_counter_ns()
    result = fn()
    return time.perf_counter_ns() - start, result


def agent_freed(centre: Centre, samples: int) -> list[int]:
    times = []
    for _ in range(samples):
        call_id, now = centre.end_any_call(), centre.tick()
        ns, actions = timed(centre, now, lambda: centre.acd.hangup(now, call_id))
        times.append(ns)
        centre.answer_all(actions)
        centre.answer_all(centre.acd.enqueue(centre.tick(), centre.new_call(), centre.busy_queue(),
                                             priority=centre.priority()))
    return times


def call_placed(centre: Centre, samples: int) -> list[int]:
    times = []
    for _ in range(samples):
        now, call_id = centre.tick(), centre.new_call()
        queue, priority = f"quiet{centre.rng.randrange(10)}", centre.priority()
        ns, actions = timed(centre, now, lambda: centre.acd.enqueue(now, call_id, queue, priority=priority))
        times.append(ns)
        for action in actions:  # the agent takes it and finishes at once: the quiet half stays ready
            if isinstance(action, RingAgent):
                centre.acd.answer(centre.tick(), call_id)
                centre.acd.hangup(centre.tick(), call_id)
    return times


def call_queued(centre: Centre, samples: int) -> list[int]:
    times = []
    for _ in range(samples):
        now, call_id = centre.tick(), centre.new_call()
        queue, priority = centre.busy_queue(), centre.priority()
        ns, _ = timed(centre, now, lambda: centre.acd.enqueue(now, call_id, queue, priority=priority))
        times.append(ns)
        centre.acd.hangup(centre.tick(), call_id)  # abandons: the line keeps its length
    return times


def announce(centre: Centre, samples: int) -> list[int]:
    times = []
    while len(times) < samples and centre.acd.next_deadline() is not None:
        due = centre.acd.next_deadline()
        centre.now = max(centre.now, due)
        ns, actions = timed(centre, due - 1, lambda: centre.acd.advance(due))
        if actions:
            times.append(ns / len(actions))  # deadlines falling together: time per announcement
    return times


def report(label: str, times: list[float]) -> None:
    cuts = statistics.quantiles(times, n=1000)
    print(f"{label:<12} n={len(times):>6}  p50 {cuts[499] / 1000:6.1f} µs  p99 {cuts[989] / 1000:6.1f} µs  "
          f"p99.9 {cuts[998] / 1000:7.1f} µs  max {max(times) / 1000:8.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--waiting", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    centre = Centre(args.agents, args.waiting, args.seed)
    print(f"centre: {args.agents} agents, {centre.waiting()} calls waiting in the busy half; "
          f"set up in {time.perf_counter() - start:.2f} s")
    gc.collect()
    report("agent freed", agent_freed(centre, args.samples))
    report("call placed", call_placed(centre, args.samples))
    report("call queued", call_queued(centre, args.samples))
    report("announce", announce(centre, args.samples))
    print(f"still waiting: {centre.waiting()}")


if __name__ == "__main__":
    main()
