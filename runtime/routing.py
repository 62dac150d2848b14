"""Routing strategies: who of a queue's ready agents gets its next call, and which waiting call a
freed agent takes.

Each queue keeps its ready agents in a `Ranked` set ordered by `ready_key`, so choosing an agent
is a look at the head (or, for round robin, one bisection) rather than a scan of all agents:

- longest_idle: the agent idle longest (since their last call ended or they became ready).
- fewest_calls: the fewest calls answered since the day began (`Acd.new_day`), then longest idle.
- skills:       the highest total level in the skills the queue needs, then longest idle.
- round_robin:  the next ready agent after the one last offered a call, in declaration order.
- preferred:    the call's preferred agent is tried first (as it is for any strategy, see
                runtime.acd); the rest of the pool is ordered as longest_idle.

Only agents meeting every skill need of the queue (at its minimum level) are in its pool, whatever
the strategy: the needs say who may take the queue's calls, the strategy who goes first.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from compiler import ir
from runtime.acd_state import Call, Seat
from runtime.ranked import Ranked


def meets_needs(queue: ir.Queue, skills: Mapping[str, int]) -> bool:
    return all(skills.get(need.skill, 0) >= need.min_level for need in queue.skills)


def skill_total(queue: ir.Queue, skills: Mapping[str, int]) -> int:
    """The agent's levels summed over the skills the queue needs (other skills do not count)."""
    return sum(skills.get(need.skill, 0) for need in queue.skills)


def ready_key(queue: ir.Queue, seat: Seat) -> tuple:
    """The agent's place among the queue's ready agents: the first is offered the next call.
    Every key ends with the agent's index, so keys are unique and ties are broken the same way
    on every run."""
    if queue.strategy == "round_robin":
        return (seat.index,)
    if queue.strategy == "fewest_calls":
        return (seat.answered, seat.idle_since, seat.index)
    if queue.strategy == "skills":
        return (-skill_total(queue, seat.skills), seat.idle_since, seat.index)
    return (seat.idle_since, seat.index)


def pick_agent(queue: ir.Queue, ready: Ranked, last_offered: int) -> str | None:
    """The ready agent to offer the queue's next call to; `last_offered` is the index of the
    agent last offered one of its calls (round robin turns on from there)."""
    if queue.strategy == "round_robin":
        return ready.first_from((last_offered + 1,))
    return ready.first()


def call_rank(queue: ir.Queue, call: Call) -> tuple:
    """Orders the head calls of an agent's queues: the queue's priority, then the call's own
    priority, then the earliest place in line."""
    return (-queue.priority, *call.key)


def expected_wait_s(position: int, staffed: int, handle_ms: Sequence[int], default_handle_ms: int) -> int | None:
    """Expected wait of the caller at `position` (1 is next), in whole seconds.

    Estimator: position x AHT / N, where AHT is the mean handle time (talk + after-call work) of the
    queue's recent calls (`default_handle_ms` before it has any) and N the agents staffing the
    queue (logged in and not on a not-ready break).  With N agents each freeing up once per AHT on
    average, a place in line moves up every AHT / N.  None when nobody staffs the queue."""
    if staffed <= 0:
        return None
    aht = sum(handle_ms) / len(handle_ms) if handle_ms else default_handle_ms
    return round(position * aht / staffed / 1000)
