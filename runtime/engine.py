"""The flow engine: one call's way through a compiled flow, as a pure state machine.

    state, commands = start_call(bundle, call_id, dialed=..., caller=..., at=...)
    state, commands = handle(bundle, state, event)

Events in (runtime.events), commands out (runtime.commands); no I/O, no clock, no randomness:
the moment of each event arrives inside it.  `handle` never changes the state it is given; it
works on a copy and returns that, so a caller may keep old states (replays, what-if runs) and a
failed save loses nothing.  The state is small and turns into JSON and back
(`CallState.to_dict` / `from_dict`), so a call survives a restart of the runtime.

How a call runs:
- Steps run one after another until one has to wait: for a prompt to finish (say, play), for the
  caller (menu, collect), for an answer (lookup, create, update, http), or for the ACD or an
  agent (enqueue, transfer).  Each step taken is recorded (StepEntered, `history`).
- Say/Play wait for their PromptFinished.  Menu and collect prompts may be cut short by a key
  (barge-in: StopPrompt); their timeout starts when the prompt has finished.
- Collect counts the keys itself: it ends at max length, at the terminator, or when no key comes
  within the timeout (nothing typed at all is a timeout; too few keys are invalid).
- Tries: each timeout or invalid entry of a menu or collect counts; while tries <= retries the
  handler runs (on_timeout / on_invalid, by default the menu again), then on_failure.  The count
  lives in the flow frame and restarts after a valid entry or after on_failure, so a handler
  that jumps back to its own menu counts on like `repeat` does.
- http and transfer agent time out by the engine's own timers (StartTimer); a reply that comes
  later is ignored.
- Subflows get a frame of their own with their own variables; `return` continues after the
  subflow step (a return from the outermost frame ends the call).  A survey armed with `survey`
  starts a fresh frame when the agent leaves.
- Events that do not fit the state (a late timer, a key during a plain prompt) change nothing
  and are reported as Ignored.  A runtime error (runtime.values.EvalError: division by zero, a
  missing record, ...) is reported as RuntimeFault and the caller hears `sorry_text`, then is
  put in `fallback_queue` if that queue exists, else hung up.  Nothing raises out of `handle`.
- A call that started on an older bundle goes on with the bundle it is given when every frame's
  step still exists there; otherwise it takes the fallback.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping

from compiler import ir
from runtime import commands as c
from runtime import events as e
from runtime.memo import once_per_object
from runtime.values import (EvalError, Scope, dump, equal, evaluate, interpolate, load, lookup_criteria, parse_digits,
                            coerce, to_text, truth, uses_secret)

# What the call is waiting for (CallState.wait).
RUNNING = "running"          # between events only while steps run
PROMPT = "prompt"            # a say/play to finish
MENU = "menu"                # a key for a menu
COLLECT = "collect"          # keys for a collect
LOOKUP = "lookup"            # LookupResult
WRITE = "write"              # RecordWritten after create/update
HTTP = "http"                # HttpReply / HttpFailed / its timer
QUEUE = "queue"              # the ACD: AgentAnswered / QueueOverflow
TRANSFER = "transfer"        # the agent rung by transfer agent
CONNECTED = "connected"      # talking to an agent: AgentLeft
TRANSFERRED = "transferred"  # handed to another number; only TransferFailed brings it back
FAREWELL = "farewell"        # a last prompt, then `after`
ENDED = "ended"

HISTORY_LIMIT = 200  # steps kept in CallState.history (the oldest are dropped)
KEYS = frozenset("0123456789*#")


@dataclass(frozen=True)
class EngineOptions:
    """What the edge running the engine decides (the bundle does not say)."""
    secrets: Callable[[str], str | None] | None = None  # secret("NAME") -> its value, or None if unset
    fallback_queue: str | None = None
    sorry_text: str = "抱歉，系统暂时无法处理您的来电，请稍后再拨。"
    unknown_number_text: str = "您拨打的号码暂未开通服务，再见。"
    max_steps: int = 1000   # steps in one event without waiting: a loop the compiler did not catch
    max_depth: int = 16     # subflows within subflows


DEFAULT_OPTIONS = EngineOptions()
# Simulations and tests reach no real outside system, so every secret stands for itself.
SIMULATION_OPTIONS = EngineOptions(secrets=lambda name: f"<{name}>")


# ------------------------------------------------------------------ the state of one call

@dataclass(slots=True)
class Frame:
    """One flow being run: the entry flow, or a subflow on top of the flow that called it."""
    flow: str
    step: str  # the current step; in a calling frame, the subflow step it waits at
    vars: dict[str, Any] = field(default_factory=dict)
    tries: dict[str, int] = field(default_factory=dict)  # menu/collect step id -> tries used

    def copy(self) -> "Frame":
        return Frame(self.flow, self.step, dict(self.vars), dict(self.tries))


@dataclass(slots=True)
class CallState:
    call_id: str
    bundle_hash: str
    caller: str
    dialed: str
    started_at: dt.datetime
    stack: list[Frame] = field(default_factory=list)
    wait: str = RUNNING
    prompt: str | None = None   # the prompt playing that the engine waits for
    timer: str | None = None    # the timer running that the engine waits for
    digits: str = ""            # keys collected so far
    seq: int = 0                # for prompt and timer ids, unique within the call
    survey: str | None = None   # the flow armed to run when the agent leaves
    recording: bool = False
    answered: bool = False
    queue: str | None = None    # the queue the call waits or waited in
    agent: str | None = None    # the agent being rung or connected
    ended: str | None = None    # why the flow is done with the call (CallEnded)
    after: str | None = None    # after the farewell prompt: "hangup:REASON" or "queue:NAME"
    history: list[str] = field(default_factory=list)  # "flow/step" of every step taken

    @property
    def flow(self) -> str | None:
        return self.stack[-1].flow if self.stack else None

    @property
    def step(self) -> str | None:
        return self.stack[-1].step if self.stack else None

    @property
    def variables(self) -> dict[str, Any]:
        return self.stack[-1].vars if self.stack else {}

    def copy(self) -> "CallState":
        copied = CallState(*[getattr(self, name) for name in _STATE_FIELDS])
        copied.stack = [frame.copy() for frame in self.stack]
        copied.history = list(self.history)
        return copied

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in _STATE_FIELDS}
        out["started_at"] = dump(self.started_at)
        out["stack"] = [{"flow": fr.flow, "step": fr.step, "vars": {k: dump(v) for k, v in fr.vars.items()},
                         "tries": dict(fr.tries)} for fr in self.stack]
        out["history"] = list(self.history)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CallState":
        try:
            values = dict(data)
            values["started_at"] = load(values["started_at"])
            values["stack"] = [Frame(fr["flow"], fr["step"], {k: load(v) for k, v in fr.get("vars", {}).items()},
                                     dict(fr.get("tries", {}))) for fr in values.get("stack", [])]
            return cls(**values)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a saved call state: {error}") from None


_STATE_FIELDS = tuple(f.name for f in fields(CallState))


# ------------------------------------------------------------------ steps by id, once per bundle

class FlowIndex:
    """The steps of every flow by id, so each event costs the same however large the flow; and
    for each record variable, the references the flow reads through it (`customer.manager.agent`
    reads through "manager"), which a lookup asks storage to fill in."""
    __slots__ = ("steps", "follows")

    def __init__(self, bundle: ir.Bundle):
        self.steps = {name: {step.id: step for step in flow.steps} for name, flow in bundle.flows.items()}
        self.follows = {name: _references_read(flow) for name, flow in bundle.flows.items()}

    def step(self, flow: str, step_id: str | None) -> ir.Step:
        found = self.steps.get(flow, {}).get(step_id)
        if found is None:
            raise EvalError(f"flow '{flow}' has no step '{step_id}'")
        return found

    def has(self, flow: str, step_id: str) -> bool:
        return step_id in self.steps.get(flow, {})


def _references_read(flow: ir.Flow) -> dict[str, tuple[str, ...]]:
    """variable (or "@record" of a lookup's where) -> dotted reference paths read through it."""
    found: dict[str, set[str]] = {}
    for path in _var_paths(flow):
        for end in range(2, len(path)):
            found.setdefault(path[0], set()).add(".".join(path[1:end]))
    return {name: tuple(sorted(paths)) for name, paths in found.items()}


def _var_paths(node: Any):
    if isinstance(node, ir.Var):
        yield node.path
    elif isinstance(node, ir.Model):
        for name in type(node).model_fields:
            yield from _var_paths(getattr(node, name))
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _var_paths(item)
    elif isinstance(node, dict):
        for item in node.values():
            yield from _var_paths(item)


@once_per_object
def flow_index(bundle: ir.Bundle) -> FlowIndex:
    """The index of a bundle, made once per bundle object (and forgotten with it)."""
    return FlowIndex(bundle)


# ------------------------------------------------------------------ entry points

def start_call(bundle: ir.Bundle, call_id: str, *, dialed: str, caller: str, at: dt.datetime,
               options: EngineOptions = DEFAULT_OPTIONS) -> tuple[CallState, list]:
    """A new call to `dialed`: runs the flow that number enters until it first waits.  A number
    no flow answers hears `unknown_number_text` and is hung up."""
    flow = bundle.numbers.get(dialed)
    if flow is None or flow not in bundle.flows:
        state = CallState(call_id, bundle.hash, caller, dialed, at)
        turn = _Turn(bundle, state, at, options)
        turn.emit(c.Note(text=f"no flow answers the number {dialed}"))
        turn.farewell(options.unknown_number_text, "hangup:unknown_number")
        return state, turn.out
    return start_flow(bundle, flow, call_id, dialed=dialed, caller=caller, at=at, options=options)


def start_flow(bundle: ir.Bundle, flow: str, call_id: str, *, dialed: str = "", caller: str = "",
               at: dt.datetime, options: EngineOptions = DEFAULT_OPTIONS) -> tuple[CallState, list]:
    """A new call that starts in `flow` whatever was dialled (tests, the simulator)."""
    if flow not in bundle.flows:
        raise ValueError(f"there is no flow '{flow}'; the flows are: {', '.join(sorted(bundle.flows)) or 'none'}")
    state = CallState(call_id, bundle.hash, caller, dialed, at)
    turn = _Turn(bundle, state, at, options)
    _safely(turn, lambda: turn.guarded(lambda: turn.push_flow(flow)))
    return state, turn.out


def handle(bundle: ir.Bundle, state: CallState, event: e.Event,
           options: EngineOptions = DEFAULT_OPTIONS) -> tuple[CallState, list]:
    """The call's next state and the commands that follow from `event`."""
    if state.wait == ENDED:
        return state, [c.Ignored(event=type(event).__name__, reason="the call has ended")]
    work = state.copy()
    turn = _Turn(bundle, work, event.at, options)
    _safely(turn, lambda: turn.same_bundle() and turn.dispatch(event))
    return work, turn.out


def _safely(turn: "_Turn", action: Callable[[], Any]) -> None:
    try:
        action()
    except Exception as error:  # a fault in the engine itself must still leave the caller a way out
        turn.fault(f"internal error: {type(error).__name__}: {error}")


# ------------------------------------------------------------------ one event's work

class _Turn:
    __slots__ = ("bundle", "index", "state", "at", "options", "out")

    def __init__(self, bundle: ir.Bundle, state: CallState, at: dt.datetime, options: EngineOptions):
        self.bundle, self.index, self.state = bundle, flow_index(bundle), state
        self.at, self.options, self.out = at, options, []

    def emit(self, *commands) -> None:
        self.out.extend(commands)

    @property
    def frame(self) -> Frame:
        return self.state.stack[-1]

    def scope(self, variables: Mapping[str, Any] | None = None) -> Scope:
        s = self.state
        return Scope(variables=self.frame.vars if variables is None else variables, caller=s.caller,
                     dialed=s.dialed, call_id=s.call_id, now=self.at, hours=self.bundle.hours,
                     secrets=self.options.secrets)

    def eval(self, expr: ir.Expr) -> Any:
        return evaluate(expr, self.scope())

    def new_id(self, prefix: str) -> str:
        self.state.seq += 1
        return f"{prefix}{self.state.seq}"

    def current(self) -> ir.Step:
        return self.index.step(self.frame.flow, self.frame.step)

    # ---- running steps

    def guarded(self, action: Callable[[], None]) -> None:
        """Do `action` and run on; a runtime error takes the fallback."""
        try:
            action()
            self.run()
        except EvalError as error:
            self.fault(str(error))

    def run(self) -> None:
        for _ in range(self.options.max_steps):
            if self.state.wait != RUNNING:
                return
            step = self.current()
            self.emit(c.StepEntered(flow=self.frame.flow, step_id=step.id))
            history = self.state.history
            history.append(f"{self.frame.flow}/{step.id}")
            if len(history) > HISTORY_LIMIT:
                del history[0]
            STEPS[step.kind](self, step)
        if self.state.wait == RUNNING:
            raise EvalError(f"the flow went through {self.options.max_steps} steps without waiting for the caller")

    def go(self, target: str | None) -> None:
        if target is None:
            raise EvalError(f"nothing follows step '{self.frame.step}' in flow '{self.frame.flow}'")
        self.frame.step = target
        self.state.wait = RUNNING

    def push_flow(self, name: str) -> None:
        flow = self.bundle.flows.get(name)
        if flow is None:
            raise EvalError(f"there is no flow '{name}'")
        if len(self.state.stack) >= self.options.max_depth:
            raise EvalError(f"subflows are nested more than {self.options.max_depth} deep")
        frame = Frame(name, flow.start)
        self.state.stack.append(frame)
        self.state.wait = RUNNING
        for var_name, var in flow.variables.items():
            if var.initial is not None:
                self.set_var(var_name, self.eval(var.initial), uses_secret(var.initial))

    def set_var(self, name: str, value: Any, secret: bool = False) -> None:
        self.frame.vars[name] = value
        self.emit(c.VariableSet(flow=self.frame.flow, name=name, value=value, secret=secret))

    # ---- sounds, timers

    def answer(self) -> None:
        if not self.state.answered:
            self.state.answered = True
            self.emit(c.Answer())

    def prompt(self, make: Callable[[str], Any]) -> None:
        self.answer()
        prompt_id = self.new_id("p")
        self.emit(make(prompt_id))
        self.state.prompt = prompt_id

    def start_timer(self, ms: int) -> None:
        timer_id = self.new_id("t")
        self.emit(c.StartTimer(timer_id=timer_id, ms=ms))
        self.state.timer = timer_id

    def cancel_timer(self) -> None:
        if self.state.timer is not None:
            self.emit(c.CancelTimer(timer_id=self.state.timer))
            self.state.timer = None

    def barge_in(self) -> None:
        if self.state.prompt is not None:
            self.emit(c.StopPrompt(prompt_id=self.state.prompt))
            self.state.prompt = None

    # ---- endings

    def end(self, reason: str) -> None:
        self.cancel_timer()
        s = self.state
        s.wait, s.ended, s.prompt, s.after = ENDED, reason, None, None
        self.emit(c.CallEnded(reason=reason))

    def hangup(self, reason: str) -> None:
        self.emit(c.Hangup(reason=reason))
        self.end(reason)

    def enqueue(self, queue: str, priority: int = 0, prefer: str | None = None, prefer_for_ms: int = 0) -> None:
        self.answer()
        self.emit(c.Enqueue(queue=queue, priority=priority, prefer_agent=prefer, prefer_for_ms=prefer_for_ms))
        self.state.queue = queue
        self.state.wait = QUEUE

    def farewell(self, text: str, after: str) -> None:
        """A last prompt (no barge-in); then `after` happens when it has finished."""
        self.prompt(lambda prompt_id: c.Say(text=text, prompt_id=prompt_id))
        self.state.wait, self.state.after = FAREWELL, after

    def fault(self, message: str) -> None:
        s = self.state
        self.emit(c.RuntimeFault(flow=s.flow, step_id=s.step, message=message))
        self.cancel_timer()
        self.barge_in()
        if s.wait == TRANSFER and s.agent:
            self.emit(c.CancelTransfer(agent=s.agent))
        s.ended, s.agent, s.digits = None, None, ""
        queue = self.options.fallback_queue
        self.farewell(self.options.sorry_text, f"queue:{queue}" if queue in self.bundle.queues else "hangup:error")

    # ---- events

    def same_bundle(self) -> bool:
        """Continue on a bundle other than the one the call started on only where its steps still exist."""
        s = self.state
        if s.bundle_hash == self.bundle.hash:
            return True
        missing = [f"{fr.flow}/{fr.step}" for fr in s.stack if not self.index.has(fr.flow, fr.step)]
        if missing:
            self.fault(f"the call's step {missing[0]} is not in the bundle it now runs on")
            return False
        self.emit(c.Note(text=f"the call goes on with bundle {self.bundle.hash or '(unsealed)'} "
                              f"(it started on {s.bundle_hash or '(unsealed)'})"))
        s.bundle_hash = self.bundle.hash
        return True

    def dispatch(self, event: e.Event) -> None:
        kind = type(event).__name__
        if isinstance(event, e.CallerHungUp):
            return self.caller_hung_up()
        handler = HANDLERS.get(self.state.wait, {}).get(type(event))
        if handler is None:
            return self.ignore(kind, f"not expected while the call is in state '{self.state.wait}'")
        if isinstance(event, e.PromptFinished) and event.prompt_id != self.state.prompt:
            return self.ignore(kind, f"prompt {event.prompt_id} is not the one the call waits for")
        if isinstance(event, e.TimerFired) and event.timer_id != self.state.timer:
            return self.ignore(kind, f"timer {event.timer_id} is no longer running")
        if isinstance(event, e.DigitPressed) and (len(event.digit) != 1 or event.digit not in KEYS):
            return self.ignore(kind, f"'{event.digit}' is not a phone key")
        self.guarded(lambda: handler(self, event))

    def ignore(self, kind: str, reason: str) -> None:
        self.emit(c.Ignored(event=kind, reason=reason))

    def caller_hung_up(self) -> None:
        s = self.state
        if s.wait == TRANSFERRED:
            s.wait = ENDED  # the flow already ended the call when it transferred it
            return
        if s.wait == TRANSFER and s.agent:
            self.emit(c.CancelTransfer(agent=s.agent))
        self.end("caller_hangup")


# ------------------------------------------------------------------ steps

def _answer(turn: _Turn, step: ir.AnswerStep) -> None:
    turn.answer()
    turn.go(step.next)


def _say(turn: _Turn, step: ir.SayStep) -> None:
    text = interpolate(step.text, turn.scope())
    if not text.strip():
        return turn.go(step.next)  # nothing to say (e.g. only an empty value)
    turn.prompt(lambda prompt_id: c.Say(text=text, prompt_id=prompt_id))
    turn.state.wait = PROMPT


def _play(turn: _Turn, step: ir.PlayStep) -> None:
    turn.prompt(lambda prompt_id: c.Play(sound=step.sound, prompt_id=prompt_id))
    turn.state.wait = PROMPT


def _ask(turn: _Turn, step: ir.MenuStep | ir.CollectStep) -> None:
    """Menu and collect: the prompt (barge-in allowed), then the timeout once it has played."""
    turn.state.digits = ""
    text = interpolate(step.prompt, turn.scope())
    turn.state.wait = MENU if step.kind == "menu" else COLLECT
    if text.strip():
        turn.prompt(lambda prompt_id: c.Say(text=text, prompt_id=prompt_id, barge_in=True))
    else:
        turn.answer()
        turn.start_timer(step.timeout_ms)


def _repeat(turn: _Turn, step: ir.RepeatStep) -> None:
    turn.go(step.menu)


def _set(turn: _Turn, step: ir.SetStep) -> None:
    turn.set_var(step.path[0], turn.eval(step.value), uses_secret(step.value))
    turn.go(step.next)


def _branch(turn: _Turn, step: ir.BranchStep) -> None:
    for condition in step.conditions:
        if truth(turn.eval(condition.when)):
            return turn.go(condition.goto)
    turn.go(step.next)


def _switch(turn: _Turn, step: ir.SwitchStep) -> None:
    subject = turn.eval(step.subject)
    for case in step.cases:
        if any(equal(subject, turn.eval(value)) for value in case.values):
            return turn.go(case.goto)
    turn.go(step.next)


def _lookup(turn: _Turn, step: ir.LookupStep) -> None:
    equals, where = lookup_criteria(step.where, turn.scope())
    reads = turn.index.follows.get(turn.frame.flow, {})
    follow = tuple(sorted(set(reads.get(step.var, ())) | set(_references_read_in(step.where))))
    turn.emit(c.Lookup(entity=step.entity, equals=equals, where=where, follow=follow))
    turn.state.wait = LOOKUP


def _references_read_in(where: ir.Expr) -> tuple[str, ...]:
    paths = [p for p in _var_paths(where) if p[0] == "@record"]
    return tuple(".".join(p[1:end]) for p in paths for end in range(2, len(p)))


def _stored(values: dict[str, Any]) -> dict[str, Any]:
    """Field values as storage keeps them: a record given for a reference field is its id."""
    return {name: value.get("id") if isinstance(value, Mapping) else value for name, value in values.items()}


def _create(turn: _Turn, step: ir.CreateStep) -> None:
    values = {name: turn.eval(expr) for name, expr in step.fields.items()}
    turn.emit(c.CreateRecord(entity=step.entity, fields=_stored(values)))
    if step.var:
        turn.frame.vars[step.var] = values  # completed with its id by RecordWritten
    turn.state.wait = WRITE


def _update(turn: _Turn, step: ir.UpdateStep) -> None:
    record = turn.frame.vars.get(step.var)
    if not isinstance(record, Mapping) or record.get("id") is None:
        raise EvalError(f"cannot update '{step.var}': it holds no stored record")
    values = {name: turn.eval(expr) for name, expr in step.fields.items()}
    turn.emit(c.UpdateRecord(entity=step.entity, record_id=record["id"], fields=_stored(values)))
    turn.frame.vars[step.var] = {**record, **values}
    turn.state.wait = WRITE


def _http(turn: _Turn, step: ir.HttpStep) -> None:
    url = to_text(turn.eval(step.url))
    if not url:
        raise EvalError("the address of the request is empty")
    headers = {h.name: to_text(turn.eval(h.value)) for h in step.headers}
    body = turn.eval(step.body) if step.body is not None else None
    secret = {h.name for h in step.headers if uses_secret(h.value)}
    secret |= {"url"} if uses_secret(step.url) else set()
    secret |= {"body"} if uses_secret(step.body) else set()
    turn.emit(c.HttpRequest(method=step.method, url=url, headers=headers, body=body, timeout_ms=step.timeout_ms,
                            secret=frozenset(secret)))
    turn.start_timer(step.timeout_ms)
    turn.state.wait = HTTP


def _enqueue(turn: _Turn, step: ir.EnqueueStep) -> None:
    if step.queue not in turn.bundle.queues:
        raise EvalError(f"there is no queue '{step.queue}'")
    prefer = turn.eval(step.prefer) if step.prefer is not None else None
    turn.enqueue(step.queue, step.priority, to_text(prefer) or None, step.prefer_for_ms if prefer else 0)


def _transfer_number(turn: _Turn, step: ir.TransferNumberStep) -> None:
    number = to_text(turn.eval(step.number))
    if not number:
        raise EvalError("there is no number to transfer the call to")
    turn.emit(c.TransferToNumber(number=number))
    turn.state.wait, turn.state.ended = TRANSFERRED, "transferred"
    turn.emit(c.CallEnded(reason="transferred"))


def _transfer_agent(turn: _Turn, step: ir.TransferAgentStep) -> None:
    agent = to_text(turn.eval(step.agent))
    if agent not in turn.bundle.agents:
        turn.emit(c.Note(text=f"no agent to ring ({agent or 'none'}); taking the no-answer path"))
        return turn.go(step.on_no_answer)
    turn.emit(c.TransferToAgent(agent=agent, timeout_ms=step.timeout_ms))
    turn.start_timer(step.timeout_ms)
    turn.state.agent, turn.state.wait = agent, TRANSFER


def _voicemail(turn: _Turn, step: ir.VoicemailStep) -> None:
    turn.answer()
    turn.emit(c.Voicemail(box=step.box, callback=step.callback))
    turn.end("voicemail")


def _record(turn: _Turn, step: ir.RecordStep) -> None:
    if not turn.state.recording:
        turn.emit(c.StartRecording())
        turn.state.recording = True
    turn.go(step.next)


def _survey(turn: _Turn, step: ir.SurveyStep) -> None:
    turn.state.survey = step.flow
    turn.go(step.next)


def _subflow(turn: _Turn, step: ir.SubflowStep) -> None:
    turn.push_flow(step.flow)


def _return(turn: _Turn, step: ir.ReturnStep) -> None:
    if len(turn.state.stack) == 1:
        return turn.hangup("hangup")  # a survey or other outermost flow that returns is done
    turn.state.stack.pop()
    turn.go(turn.current().next)


def _hangup(turn: _Turn, step: ir.HangupStep) -> None:
    turn.hangup("hangup")


STEPS: dict[str, Callable[[_Turn, Any], None]] = {
    "answer": _answer, "say": _say, "play": _play, "menu": _ask, "collect": _ask, "repeat": _repeat,
    "set": _set, "branch": _branch, "switch": _switch, "lookup": _lookup, "create": _create, "update": _update,
    "http": _http, "enqueue": _enqueue, "transfer_number": _transfer_number, "transfer_agent": _transfer_agent,
    "voicemail": _voicemail, "record": _record, "survey": _survey, "subflow": _subflow, "return": _return,
    "hangup": _hangup,
}


# ------------------------------------------------------------------ events by what the call waits for

def _prompt_done(turn: _Turn, event: e.PromptFinished) -> None:
    turn.state.prompt = None
    turn.go(turn.current().next)


def _ask_prompt_done(turn: _Turn, event: e.PromptFinished) -> None:
    turn.state.prompt = None
    turn.start_timer(turn.current().timeout_ms)


def _failed_try(turn: _Turn, step: ir.MenuStep | ir.CollectStep, reason: str) -> None:
    tries = turn.frame.tries.get(step.id, 0) + 1
    turn.emit(c.TryCounted(flow=turn.frame.flow, step_id=step.id, reason=reason, tries=tries))
    if tries > step.retries:
        turn.frame.tries.pop(step.id, None)
        return turn.go(step.on_failure)
    turn.frame.tries[step.id] = tries
    handler = step.on_timeout if reason == "timeout" else step.on_invalid
    turn.go(handler or step.id)


def _menu_key(turn: _Turn, event: e.DigitPressed) -> None:
    turn.barge_in()
    turn.cancel_timer()
    step = turn.current()
    for option in step.options:
        if option.key == event.digit:
            turn.frame.tries.pop(step.id, None)
            return turn.go(option.goto)
    _failed_try(turn, step, "invalid")


def _ask_timeout(turn: _Turn, event: e.TimerFired) -> None:
    turn.state.timer = None
    step = turn.current()
    if step.kind == "collect" and turn.state.digits:
        return _submit(turn, step)
    _failed_try(turn, step, "timeout")


def _collect_key(turn: _Turn, event: e.DigitPressed) -> None:
    turn.barge_in()
    turn.cancel_timer()
    step: ir.CollectStep = turn.current()
    if event.digit == step.terminator:
        return _submit(turn, step)
    turn.state.digits += event.digit
    if len(turn.state.digits) >= step.max_length:
        return _submit(turn, step)
    turn.start_timer(step.timeout_ms)


def _submit(turn: _Turn, step: ir.CollectStep) -> None:
    keys, turn.state.digits = turn.state.digits, ""
    value = parse_digits(step.digit_type, keys) if step.min_length <= len(keys) <= step.max_length else None
    if value is not None and step.valid is not None:
        if not truth(evaluate(step.valid, turn.scope({**turn.frame.vars, step.var: value}))):
            value = None
    if value is None:
        turn.emit(c.Note(text=f"'{keys}' is not a valid {step.digit_type}"))
        return _failed_try(turn, step, "invalid")
    turn.frame.tries.pop(step.id, None)
    turn.set_var(step.var, value)
    turn.go(step.next)


def _lookup_result(turn: _Turn, event: e.LookupResult) -> None:
    step: ir.LookupStep = turn.current()
    record = event.record if isinstance(event.record, Mapping) else None
    turn.set_var(step.var, record)
    turn.go(step.next if record is not None else step.not_found)


def _storage_failed(turn: _Turn, event: e.StorageFailed) -> None:
    raise EvalError(f"storage failed: {event.reason}")


def _record_written(turn: _Turn, event: e.RecordWritten) -> None:
    step = turn.current()
    if step.var:
        known = turn.frame.vars.get(step.var)
        stored = event.record if isinstance(event.record, Mapping) else {**(known or {}), "id": event.record_id}
        turn.set_var(step.var, stored)
    turn.go(step.next)


def _http_reply(turn: _Turn, event: e.HttpReply) -> None:
    turn.cancel_timer()
    step: ir.HttpStep = turn.current()
    try:
        value = _reply_value(step, event.status, event.body)
    except EvalError as problem:
        return _http_error(turn, step, str(problem))
    turn.set_var(step.var, value)
    turn.go(step.next)


def _reply_value(step: ir.HttpStep, status: int, body: Any) -> Any:
    """The reply as the flow sees it: its JSON with the `returns` fields typed."""
    if not 200 <= status < 300:
        raise EvalError(f"{step.method} {step.id} got HTTP {status}")
    if isinstance(body, (str, bytes)) and step.returns:
        try:
            body = json.loads(body)
        except ValueError:
            raise EvalError("the reply is not JSON") from None
    if not step.returns:
        return body
    if not isinstance(body, Mapping):
        raise EvalError("the reply is not a JSON object")
    typed = dict(body)
    for name, type_ in step.returns.items():
        if body.get(name) is None:
            raise EvalError(f"the reply has no field '{name}'")
        try:
            typed[name] = coerce(body[name], type_)
        except EvalError as problem:
            raise EvalError(f"the reply's field '{name}': {problem}") from None
    return typed


def _http_error(turn: _Turn, step: ir.HttpStep, reason: str) -> None:
    turn.emit(c.Note(text=f"http {step.id} failed: {reason}"))
    turn.set_var(step.var, None)
    turn.go(step.on_error)


def _http_failed(turn: _Turn, event: e.HttpFailed) -> None:
    turn.cancel_timer()
    _http_error(turn, turn.current(), event.reason)


def _http_timeout(turn: _Turn, event: e.TimerFired) -> None:
    turn.state.timer = None
    step = turn.current()
    _http_error(turn, step, f"no reply within {step.timeout_ms} ms")


def _agent_answered(turn: _Turn, event: e.AgentAnswered) -> None:
    turn.cancel_timer()
    turn.state.agent, turn.state.wait = event.agent, CONNECTED


def _overflow(turn: _Turn, event: e.QueueOverflow) -> None:
    s = turn.state
    if event.kind == "voicemail":
        turn.emit(c.Voicemail(box=event.target or s.queue or "default"))
        turn.end("voicemail")
    elif event.kind == "hangup":
        turn.hangup("overflow")
    elif event.kind == "queue" and event.target:
        turn.emit(c.Note(text=f"moved from queue {s.queue} to {event.target}"))
        s.queue = event.target
    elif event.kind == "callback":
        turn.emit(c.Note(text=f"a callback keeps the caller's place in queue {s.queue}"))
    else:
        turn.ignore("QueueOverflow", f"unknown overflow kind '{event.kind}'")


def _transfer_failed(turn: _Turn, event: e.TransferFailed) -> None:
    turn.cancel_timer()
    turn.emit(c.Note(text=f"agent {turn.state.agent} did not take the call: {event.reason}"))
    turn.state.agent = None
    turn.go(turn.current().on_no_answer)


def _transfer_timeout(turn: _Turn, event: e.TimerFired) -> None:
    turn.state.timer = None
    turn.emit(c.CancelTransfer(agent=turn.state.agent))
    turn.state.agent = None
    turn.go(turn.current().on_no_answer)


def _agent_left(turn: _Turn, event: e.AgentLeft) -> None:
    survey = turn.state.survey
    if survey is None:
        return turn.hangup("agent_hangup")
    turn.state.survey = None
    turn.state.stack.clear()
    turn.push_flow(survey)


def _number_failed(turn: _Turn, event: e.TransferFailed) -> None:
    turn.fault(f"the transfer failed: {event.reason}")


def _farewell_done(turn: _Turn, event: e.PromptFinished) -> None:
    turn.state.prompt = None
    kind, _, target = (turn.state.after or "hangup:hangup").partition(":")
    if kind == "queue":
        turn.state.after = None
        return turn.enqueue(target)
    turn.hangup(target)


HANDLERS: dict[str, dict[type, Callable[[_Turn, Any], None]]] = {
    PROMPT: {e.PromptFinished: _prompt_done},
    MENU: {e.PromptFinished: _ask_prompt_done, e.DigitPressed: _menu_key, e.TimerFired: _ask_timeout},
    COLLECT: {e.PromptFinished: _ask_prompt_done, e.DigitPressed: _collect_key, e.TimerFired: _ask_timeout},
    LOOKUP: {e.LookupResult: _lookup_result, e.StorageFailed: _storage_failed},
    WRITE: {e.RecordWritten: _record_written, e.StorageFailed: _storage_failed},
    HTTP: {e.HttpReply: _http_reply, e.HttpFailed: _http_failed, e.TimerFired: _http_timeout},
    QUEUE: {e.AgentAnswered: _agent_answered, e.QueueOverflow: _overflow},
    TRANSFER: {e.AgentAnswered: _agent_answered, e.TransferFailed: _transfer_failed, e.TimerFired: _transfer_timeout},
    CONNECTED: {e.AgentLeft: _agent_left},
    TRANSFERRED: {e.TransferFailed: _number_failed},
    FAREWELL: {e.PromptFinished: _farewell_done},
}
