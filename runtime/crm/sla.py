"""SLA clocks of a workflow's records, from their state history.  Pure: no database.

A clock starts when the record enters the SLA's `from` state and stops at its first entry into
one of the `until` states.  It counts only the open time of the workflow's hours, and stands
still while the record is in a paused state.

Reopening: a clock that has stopped stays stopped, with what it measured, when the record moves
on to a state that is not `from` (the example's `reopen`: resolved -> in_progress keeps the
resolution clock's result; the workflow raises the priority instead).  Entering `from` again
after a stop starts a new run from zero (`run` counts them), so that rules fire again for it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from compiler import ir
from runtime.hours import add_business_time, business_time_between

History = list[tuple[datetime, str]]  # (when, state entered), oldest first


@dataclass(frozen=True)
class SlaClock:
    name: str
    sla: ir.Sla
    run: int                      # 0: not started yet; 1 for the first run, 2 after a restart...
    target_ms: int
    elapsed_ms: int               # business time, paused states excluded
    started_at: datetime | None
    stopped_at: datetime | None
    paused: bool
    due_at: datetime | None       # when it reaches 100% if nothing changes; None when paused or stopped
    breached_at: datetime | None  # when it reached 100%, if it has

    @property
    def started(self) -> bool:
        return self.run > 0

    @property
    def stopped(self) -> bool:
        return self.stopped_at is not None

    @property
    def running(self) -> bool:
        """Counting now: started, not stopped, not paused."""
        return self.started and not self.stopped and not self.paused

    @property
    def percent(self) -> float:
        return 100.0 * self.elapsed_ms / self.target_ms if self.target_ms else 100.0

    @property
    def breached(self) -> bool:
        return self.started and self.elapsed_ms >= self.target_ms

    @property
    def left_ms(self) -> int:
        """Business time left; negative when overdue."""
        return self.target_ms - self.elapsed_ms


@dataclass(frozen=True)
class DueAction:
    key: str            # stored by the caller so that the action fires once
    clock: SlaClock
    rule: ir.SlaRule


def workflow_hours(bundle: ir.Bundle, workflow: ir.Workflow) -> ir.Hours:
    if not workflow.hours or workflow.hours not in bundle.hours:
        raise ValueError(f"workflow {workflow.name} counts its SLAs in hours {workflow.hours!r}, "
                         f"which the project does not declare")
    return bundle.hours[workflow.hours]


def sla_clocks(bundle: ir.Bundle, workflow: ir.Workflow, history: History, now: datetime) -> list[SlaClock]:
    """One clock per SLA of the workflow, as they stand at `now`."""
    if not workflow.slas:
        return []
    hours = workflow_hours(bundle, workflow)
    paused = {s.name for s in workflow.states if s.paused}
    history = [(at, state) for at, state in history if at <= now]
    return [clock(sla, hours, paused, history, now) for sla in workflow.slas]


def clock(sla: ir.Sla, hours: ir.Hours, paused_states: set[str], history: History, now: datetime) -> SlaClock:
    run, started_at, stopped_at = 0, None, None
    for at, state in history:
        if state == sla.start and (run == 0 or stopped_at is not None):
            run, started_at, stopped_at = run + 1, at, None
        elif run and stopped_at is None and state in sla.stops:
            stopped_at = at
    if not run:
        return SlaClock(sla.name, sla, 0, sla.duration_ms, 0, None, None, False, None, None)
    end = stopped_at or now
    segments = _counting_segments(history, paused_states, started_at, end)
    elapsed, breached_at = 0, None
    for low, high in segments:
        part = business_time_between(hours, low, high)
        if breached_at is None and elapsed + part >= sla.duration_ms:
            breached_at = add_business_time(hours, low, sla.duration_ms - elapsed)
        elapsed += part
    paused = stopped_at is None and bool(history) and history[-1][1] in paused_states
    due_at = None
    if stopped_at is None and not paused:
        due_at = breached_at or add_business_time(hours, now, sla.duration_ms - elapsed)
    return SlaClock(sla.name, sla, run, sla.duration_ms, elapsed, started_at, stopped_at, paused, due_at, breached_at)


def _counting_segments(history: History, paused_states: set[str], start: datetime,
                       end: datetime) -> list[tuple[datetime, datetime]]:
    """The stretches of [start, end) the record spent in states that are not paused."""
    out = []
    for i, (at, state) in enumerate(history):
        until = history[i + 1][0] if i + 1 < len(history) else end
        low, high = max(at, start), min(until, end)
        if high > low and state not in paused_states:
            out.append((low, high))
    return out


def due_actions(clock: SlaClock, fired_before: set[str]) -> list[DueAction]:
    """The clock's rules that are due (the clock is as of its `now`) and not in `fired_before`.

    `at P%` rules fire once per run when the clock has used P% (also while paused, if the tick
    missed the moment; not after it stopped).  `remind ... every D` fires once per D of counted
    time while the clock runs; after a gap only the latest reminder is sent, not a backlog."""
    if not clock.started or clock.stopped:
        return []
    due = []
    for index, rule in enumerate(clock.sla.rules):
        if rule.every_ms:
            intervals = clock.elapsed_ms // rule.every_ms
            key = f"{clock.name}#{clock.run}:rule{index}:{intervals}"
            if clock.running and intervals >= 1 and key not in fired_before:
                due.append(DueAction(key, clock, rule))
        elif rule.percent is not None and clock.percent >= rule.percent:
            key = f"{clock.name}#{clock.run}:rule{index}"
            if key not in fired_before:
                due.append(DueAction(key, clock, rule))
    return due


def time_left_ms(clocks: list[SlaClock]) -> int | None:
    """The least business time left on the record's started, unstopped clocks (negative when
    overdue); None when no clock is counting for it.  The supervisor's list sorts by this."""
    left = [c.left_ms for c in clocks if c.started and not c.stopped]
    return min(left) if left else None
