"""The Erlang C model of a queue: waiting probability, service level, ASA, and staffing.

Assumptions: calls arrive at random (Poisson), handle times are exponential, nobody hangs up
while waiting, one skill, first come first served.  The what-if simulator drops these
assumptions; where they hold, both must agree.
"""
from __future__ import annotations

import math


def traffic_erlangs(calls_per_hour: float, aht_s: float) -> float:
    """Offered load A in Erlangs: the number of agents that would be busy all the time."""
    return calls_per_hour * aht_s / 3600.0


def erlang_b(agents: int, erlangs: float) -> float:
    """Blocking probability, by the stable recursion B(n) = A·B(n-1) / (n + A·B(n-1))."""
    b = 1.0
    for n in range(1, agents + 1):
        b = erlangs * b / (n + erlangs * b)
    return b


def erlang_c(agents: int, erlangs: float) -> float:
    """Probability that a call has to wait.  1.0 when the agents cannot keep up (A >= N)."""
    if agents <= erlangs:
        return 1.0
    b = erlang_b(agents, erlangs)
    return agents * b / (agents - erlangs * (1 - b))


def service_level(agents: int, calls_per_hour: float, aht_s: float, target_s: float) -> float:
    """Share of calls answered within `target_s` seconds."""
    a = traffic_erlangs(calls_per_hour, aht_s)
    if agents <= a:
        return 0.0
    return 1.0 - erlang_c(agents, a) * math.exp(-(agents - a) * target_s / aht_s)


def average_speed_of_answer(agents: int, calls_per_hour: float, aht_s: float) -> float:
    """Mean wait in seconds over all calls; infinite when the agents cannot keep up."""
    a = traffic_erlangs(calls_per_hour, aht_s)
    if agents <= a:
        return math.inf
    return erlang_c(agents, a) * aht_s / (agents - a)


def agents_needed(calls_per_hour: float, aht_s: float, target_level: float, target_s: float,
                  max_agents: int = 100_000) -> int:
    """The fewest agents that answer `target_level` (e.g. 0.8) of calls within `target_s` seconds."""
    if calls_per_hour <= 0:
        return 0
    n = max(1, math.floor(traffic_erlangs(calls_per_hour, aht_s)) + 1)
    while n <= max_agents:
        if service_level(n, calls_per_hour, aht_s, target_s) >= target_level:
            return n
        n += 1
    raise ValueError(f"more than {max_agents} agents would be needed")
