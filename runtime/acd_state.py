"""What the ACD knows of each agent (a seat) and of each call it holds."""
from __future__ import annotations

from dataclasses import dataclass, field

# Agents in these states count as staffing a queue when the expected wait is estimated.
STAFFED = frozenset({"ready", "ringing", "on_call", "wrap_up"})


@dataclass(slots=True, eq=False)
class Seat:
    name: str
    index: int                      # order of declaration; the round-robin rotation follows it
    skills: dict[str, int]
    queues: tuple[str, ...] = ()    # the queues the agent takes calls from (member and skilled)
    state: str = "logged_out"
    reason: str | None = None
    idle_since: int = 0             # when the last call ended or the agent became ready
    answered: int = 0               # calls answered since the last `new_day`
    call: str | None = None         # the call ringing or connected to this agent
    handling: tuple[str, int] | None = None  # (queue, answered at) of the call in talk or wrap-up
    after_call: str | None = None   # not-ready reason asked for during a call, applied after it


@dataclass(slots=True, eq=False)
class Call:
    id: str
    queue: str
    priority: int
    enqueued_at: int                # the call's place in line: kept through ring-no-answer and overflow
    seq: int                        # breaks ties between calls queued in the same millisecond
    visit_at: int                   # when it entered this queue (waits and max wait count from here)
    state: str = "waiting"          # waiting, ringing, connected
    agent: str | None = None
    preferred: str | None = None    # while set, the call waits in this agent's personal line
    callback: bool = False          # the caller has hung up; an agent will call back
    answered_at: int = 0
    overdue: bool = field(default=False)  # max wait passed while ringing: overflow if the ring fails

    @property
    def key(self) -> tuple[int, int, int]:
        """Place in line: higher priority first, then the earlier enqueue."""
        return (-self.priority, self.enqueued_at, self.seq)
