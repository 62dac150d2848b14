"""Runs flow test files: each scripted call through the real engine and ACD, then its expectations.

A failure names the test, the step and the difference, and shows what the caller heard, like
pytest.  Coverage records every step entered and every branch taken (a step followed by the
next step in the same flow), so `flowdesk test --coverage` can list what no test reached.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from compiler import ir
from runtime import acd_actions as a
from runtime import commands as c
from runtime import engine
from runtime import scenario as s
from runtime.callcenter import CallCenter, MemoryCrm
from runtime.values import equal, plain

DEFAULT_AT = dt.datetime(2026, 11, 23, 10, 0)   # a Monday morning
PATIENCE = dt.timedelta(minutes=10)              # how long a `hear` or `answer` waits for its moment
CALL_ID = "test-call"


class Failed(Exception):
    """An expectation that did not hold: `step` says where in the script."""

    def __init__(self, step: str, message: str):
        super().__init__(message)
        self.step = step


@dataclass
class Outcome:
    test: s.CallTest
    path: Path
    error: Failed | None
    transcript: list[str]
    steps: set[tuple[str, str]] = field(default_factory=set)          # (flow, step id)
    branches: set[tuple[str, str, str]] = field(default_factory=set)  # (flow, from, to)

    @property
    def passed(self) -> bool:
        return self.error is None


class _Run:
    def __init__(self, bundle: ir.Bundle, test: s.CallTest):
        self.test = test
        tz = ZoneInfo(test.timezone)
        self.now = (test.at or DEFAULT_AT).replace(tzinfo=tz) if (test.at or DEFAULT_AT).tzinfo is None \
            else test.at.astimezone(tz)
        self.crm = MemoryCrm(bundle, test.crm)
        self.center = CallCenter(bundle, epoch=self.now, crm=self.crm, http=self._http, prompt_ms=lambda cmd: 0,
                                 options=engine.SIMULATION_OPTIONS, test=True)
        self.heard: list[str] = []     # every prompt, in order
        self.unmatched = 0             # index of the next prompt a `hear` looks at
        self.transcript: list[str] = []
        self.media: list = []

    # -------------------------------------------------------------- the outside world
    def _http(self, request: c.HttpRequest):
        for stub in self.test.http:
            if stub.method.upper() == request.method.upper() and stub.url in request.url:
                if stub.fail == "timeout":
                    return None
                if stub.fail == "refused":
                    return "connection refused"
                return stub.status, stub.body
        return "no stub in the test answers " + f"{request.method} {request.url}"

    def _collect(self) -> None:
        for media in self.center.take_outbox():
            command = media.command
            self.media.append(command)
            text = None
            if isinstance(command, c.Say):
                text = command.text
            elif isinstance(command, c.Play):
                text = command.sound
            elif isinstance(command, a.Announce):
                text = f"position {command.position}, wait {command.expected_wait_s}s"
            if text is not None:
                self.heard.append(text)
                self.transcript.append(f"{media.at:%H:%M:%S} 🔊 {text}")
            elif not isinstance(command, (c.StopPrompt,)):
                self.transcript.append(f"{media.at:%H:%M:%S} · {_describe(command)}")

    def _advance(self, until: dt.datetime) -> None:
        self.center.advance(until)
        self.now = max(self.now, until)
        self._collect()

    def _run_until(self, done) -> bool:
        """Let time run, one due moment at a time, until `done()` or PATIENCE has passed."""
        limit = self.now + PATIENCE
        while not done():
            following = self.center.next_due()
            if following is None or following > limit:
                return False
            self._advance(following)
        return True

    @property
    def state(self):
        return self.center.calls[CALL_ID].state

    # -------------------------------------------------------------- the script
    def run(self) -> None:
        for agent in self.test.agents:
            self.center.login(agent, self.now)
        if self.test.number:
            self.center.start_call(CALL_ID, caller=self.test.caller, dialed=self.test.number, at=self.now)
        elif self.test.flow not in self.center.bundle.flows:
            from dsl.diagnostics import did_you_mean

            flows = self.center.bundle.flows
            raise Failed("start", f"there is no flow '{self.test.flow}'"
                                  f" ({did_you_mean(self.test.flow, flows) or 'the flows are: ' + ', '.join(flows)})")
        else:
            self.center.start_call(CALL_ID, caller=self.test.caller, flow=self.test.flow, at=self.now)
        self._advance(self.now)
        for i, step in enumerate(self.test.steps, start=1):
            self._step(i, step)
        self._run_until(lambda: self.state.ended is not None and self.state.wait == "ended")
        self._expect()

    def _step(self, i: int, step) -> None:
        where = f"step {i} ({_step_text(step)})"
        if isinstance(step, s.Hear):
            if not self._run_until(lambda: len(self.heard) > self.unmatched):
                raise Failed(where, f"expected to hear '{step.hear}', but nothing more was said")
            heard = self.heard[self.unmatched]
            self.unmatched += 1
            if step.hear not in heard:
                raise Failed(where, f"expected to hear '{step.hear}'\n   heard: '{heard}'")
        elif isinstance(step, s.Press):
            self._advance(self.now)  # prompts that finish at this moment have finished before the key
            self._ensure_running(where)
            self.transcript.append(f"{self.now:%H:%M:%S} ☎ {step.press}")
            self.center.press(CALL_ID, step.press, self.now)
            self._collect()
        elif isinstance(step, s.Wait):
            self._advance(self.now + dt.timedelta(milliseconds=step.wait))
        elif isinstance(step, s.Answer):
            if not self._run_until(lambda: self.center.ringing.get(step.answer) == CALL_ID):
                rung = ", ".join(sorted(self.center.ringing)) or "nobody"
                raise Failed(where, f"agent {step.answer} was never rung for this call (ringing now: {rung})")
            self.transcript.append(f"{self.now:%H:%M:%S} ✔ {step.answer} answers")
            self.center.agent_answers(step.answer, self.now)
            self._collect()
        elif isinstance(step, s.AgentHangsUp):
            if self.state.wait != "connected":
                raise Failed(where, f"no agent is on the call (the call is waiting for: {self.state.wait})")
            self.center.agent_hangs_up(CALL_ID, self.now)
            self._collect()
        elif isinstance(step, s.Hangup):
            self.transcript.append(f"{self.now:%H:%M:%S} ✖ caller hangs up")
            self.center.caller_hangs_up(CALL_ID, self.now)
            self._collect()

    def _ensure_running(self, where: str) -> None:
        if self.state.wait == "ended":
            raise Failed(where, f"the call had already ended ({self.state.ended})")

    # -------------------------------------------------------------- expectations
    def _expect(self) -> None:
        e = self.test.expect
        where = "expect"
        if e.prompts is not None:
            if len(e.prompts) != len(self.heard) or any(p not in h for p, h in zip(e.prompts, self.heard)):
                raise Failed(where, "prompts differ\n" + _diff(e.prompts, self.heard))
        if e.queue is not None and self.state.queue != e.queue:
            raise Failed(where, f"expected queue {e.queue}, the call went to {self.state.queue or 'no queue'}")
        if e.agent is not None and self.state.agent != e.agent:
            raise Failed(where, f"expected agent {e.agent}, the call reached {self.state.agent or 'no agent'}")
        if e.ended is not None and self.state.ended != e.ended:
            raise Failed(where, f"expected the call to end with '{e.ended}', it ended with '{self.state.ended}'")
        for kind, expected, actual in (("created", e.created, self.crm.created), ("updated", e.updated, self.crm.updated)):
            if expected is not None:
                _records(where, kind, expected, actual)
        if e.transferred_to is not None:
            numbers = [m.number for m in self.media if isinstance(m, c.TransferToNumber)]
            if e.transferred_to not in numbers:
                raise Failed(where, f"expected a transfer to {e.transferred_to}, transfers: {numbers or 'none'}")
        if e.voicemail is not None:
            boxes = [m.box for m in self.media if isinstance(m, c.Voicemail)]
            if e.voicemail not in boxes:
                raise Failed(where, f"expected voicemail box {e.voicemail}, got {boxes or 'no voicemail'}")
        for name, value in (e.variables or {}).items():
            actual = self.state.variables.get(name)
            if not equal(actual, value) and plain(actual) != value:
                raise Failed(where, f"variable {name}: expected {value!r}, it is {plain(actual)!r}")


def _records(where: str, kind: str, expected: dict[str, list[dict]], actual: list[tuple[str, dict]]) -> None:
    for entity, wanted in expected.items():
        rows = [row for name, row in actual if name == entity]
        if len(rows) != len(wanted):
            raise Failed(where, f"expected {len(wanted)} {entity} record(s) {kind}, there were {len(rows)}: {rows}")
        for want, row in zip(wanted, rows):
            for name, value in want.items():
                if not equal(row.get(name), value) and plain(row.get(name)) != value:
                    raise Failed(where, f"{entity} {kind}: field {name} is {plain(row.get(name))!r}, expected {value!r}")


def _diff(expected: list[str], heard: list[str]) -> str:
    lines = []
    for i in range(max(len(expected), len(heard))):
        want = expected[i] if i < len(expected) else "(nothing)"
        got = heard[i] if i < len(heard) else "(nothing)"
        mark = " " if i < len(expected) and i < len(heard) and want in got else "✗"
        lines.append(f"   {mark} {i + 1}. expected: {want}\n        heard:    {got}")
    return "\n".join(lines)


def _describe(command) -> str:
    name = type(command).__name__
    detail = {c.Hangup: "reason", c.TransferToNumber: "number", c.Voicemail: "box", a.RingAgent: "agent",
              a.Bridge: "agent", a.StopRinging: "agent", c.Enqueue: "queue"}.get(type(command))
    return f"{name} {getattr(command, detail)}" if detail else name


def _step_text(step) -> str:
    (key, value), = step.model_dump().items()
    return f"{key}: {value}"


def run_test(bundle: ir.Bundle, test: s.CallTest, path: Path) -> Outcome:
    run = _Run(bundle, test)
    error = None
    try:
        run.run()
    except Failed as failure:
        error = failure
    steps, branches = _coverage(run.center.take_rows())
    return Outcome(test=test, path=path, error=error, transcript=run.transcript, steps=steps, branches=branches)


def _coverage(rows) -> tuple[set, set]:
    from runtime.storage import CallEvent

    steps, branches, last = set(), set(), {}
    for row in rows:
        if isinstance(row, CallEvent) and row.name == "StepEntered":
            flow, step = row.data["flow"], row.data["step_id"]
            steps.add((flow, step))
            # The last step per flow, so a subflow in between still joins its caller's two steps.
            previous = last.get((row.call_id, flow))
            if previous is not None:
                branches.add((flow, previous, step))
            last[(row.call_id, flow)] = step
    return steps, branches


def find_test_files(paths: list[Path]) -> list[Path]:
    found = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(p.rglob("*.test.yaml")))
        elif p.name.endswith(".test.yaml"):
            found.append(p)
    return found


# ------------------------------------------------------------------ coverage of the flows

@dataclass
class FlowCoverage:
    flow: str
    steps: list[str]
    branches: list[tuple[str, str]]
    missed_steps: list[str]
    missed_branches: list[tuple[str, str]]

    @property
    def percent(self) -> float:
        total = len(self.steps) + len(self.branches)
        missed = len(self.missed_steps) + len(self.missed_branches)
        return 100.0 * (total - missed) / total if total else 100.0


def coverage(bundle: ir.Bundle, outcomes: list[Outcome]) -> list[FlowCoverage]:
    from compiler.flow_checks import successors

    steps = set().union(*(o.steps for o in outcomes)) if outcomes else set()
    branches = set().union(*(o.branches for o in outcomes)) if outcomes else set()
    report = []
    for flow in bundle.flows.values():
        all_steps = [step.id for step in flow.steps]
        all_branches = sorted({(step.id, target) for step in flow.steps for target in successors(step)})
        report.append(FlowCoverage(
            flow=flow.name, steps=all_steps, branches=all_branches,
            missed_steps=[sid for sid in all_steps if (flow.name, sid) not in steps],
            missed_branches=[(a_, b_) for a_, b_ in all_branches if (flow.name, a_, b_) not in branches]))
    return report
