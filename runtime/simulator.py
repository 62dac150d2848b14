"""The terminal simulator: one call through the call centre, driven by lines a person types.

`Simulator` takes the caller's lines (keys such as `1` or `13800138000#`, `wait 10s`, `answer`,
`agent-hangup`, `hangup`, `help`, `quit`) and returns the lines to show: prompts as text, sounds
by name, queue and agent events, and at the end where the call went.  `play` runs a whole
session over any source of lines, so `flowdesk call` reads a terminal or a piped script the same
way and tests need no terminal.

Time is simulated.  Prompts take a time estimated from their text, and the caller's turn comes
when the call waits for keys, an agent or the caller: the clock runs through prompts by itself
and otherwise only moves on `wait`.  There are no outside systems: every HTTP request fails, so
flows take their `else` path.  Records live in memory (`MemoryCrm`), seeded from `--crm`.

Besides the lines, a session keeps what it showed as `entries` (the time, the text, and a prompt's
words to speak), the steps the call went through (`visited`, `current`) and the call's record
(`call`), so the studio's simulator panel drives the very same session from the browser.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from compiler import ir
from dsl.diagnostics import did_you_mean
from dsl.literals import parse_duration
from runtime import acd_actions as a
from runtime import commands as c
from runtime import engine
from runtime.callcenter import CallCenter, MemoryCrm
from runtime.storage import CallEvent
from runtime.values import EvalError, coerce, plain

MS_PER_CHARACTER = 250   # a prompt's speaking time, estimated from its text
MIN_PROMPT_MS = 1000     # sounds and short prompts
HTTP_FAILURE = "no outside systems in the simulator"
CALL_ID = "call-1"
# Requests never leave the simulator, so a secret needs no real value; the log masks it anyway.
OPTIONS = engine.SIMULATION_OPTIONS
MAX_STEPS_ALONE = 1000   # prompts in a row without the caller's turn: a flow that talks forever

KEYS = frozenset(engine.KEYS)
_WAIT = re.compile(r"wait(?:\s+(?P<amount>\S+))?")
_DURATION = re.compile(r"(?:[0-9]+(?:ms|h|m|s))+|[0-9]+")
# The call waits on these by itself; anything else is the caller's (or an agent's) turn.
_RUNNING_ALONE = {engine.RUNNING, engine.PROMPT, engine.FAREWELL, engine.LOOKUP, engine.WRITE, engine.HTTP}
_OVER = {engine.ENDED, engine.TRANSFERRED}

HELP = """\
  1, 13800138000#   press keys (0-9, * and #)
  wait 10s          let time pass (also 1m30s, 500ms; `wait` alone: until the next thing happens)
  answer            the ringing agent picks up
  agent-hangup      the agent leaves the call
  hangup            the caller hangs up
  help              this list
  quit              hang up and show where the call went"""


class SimulatorError(Exception):
    """Bad options or a line the simulator does not understand; the message says what."""


@dataclass(frozen=True)
class Entry:
    """One thing the session showed, as data: `text` is the line without its clock; `spoken` the
    words of a `say` prompt, `sound` the name of a played sound; `what` names the kind of thing (a
    command's class name such as `Say` or `RingAgent`, or one of the session's own: start, queue,
    connected, agent_left, caller_hangup, http, fault, nothing_due, talks_forever) and `facts` holds
    its particulars, so a page can word it in its own language."""
    at: dt.datetime
    text: str
    spoken: str | None = None
    sound: str | None = None
    what: str = ""
    facts: dict = field(default_factory=dict)


def prompt_ms(command: c.Say | c.Play) -> int:
    """How long a prompt plays: its text read at a steady pace; a sound (or a short text), a second."""
    text = command.text if isinstance(command, c.Say) else ""
    return max(MIN_PROMPT_MS, MS_PER_CHARACTER * len(text))


def parse_moment(text: str | None, zone_name: str, now: Callable[[dt.tzinfo], dt.datetime]) -> dt.datetime:
    """`--at "2026-11-23 21:30"` read in the zone `--tz`; without --at, `now` in that zone."""
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SimulatorError(f"--tz '{zone_name}' is not a time zone such as Asia/Shanghai") from None
    if text is None:
        return now(zone)
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise SimulatorError(f"--at '{text}' is not a date and time such as \"2026-11-23 21:30\"") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def read_records(path: Path, bundle: ir.Bundle) -> dict[str, list[dict]]:
    """The records of a YAML file `{Entity: [records]}` (`--crm`)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SimulatorError(f"{path}: {error.strerror or error}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise SimulatorError(f"{path} is not readable YAML: {error}") from None
    try:
        return load_records(bundle, data)
    except SimulatorError as error:
        raise SimulatorError(f"{path}: {error}") from None


def load_records(bundle: ir.Bundle, data) -> dict[str, list[dict]]:
    """Records for the CRM from `{Entity: [records]}`, each value as its field's type."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SimulatorError("the records must be a mapping of entity names to lists of records, e.g. Customer: [...]")
    return {entity: [_record(bundle, entity, row, n) for n, row in enumerate(_rows(bundle, entity, rows), 1)]
            for entity, rows in data.items()}


def _rows(bundle: ir.Bundle, entity, rows) -> list:
    if entity not in bundle.entities:
        hint = did_you_mean(str(entity), bundle.entities) or f"the entities are: {', '.join(bundle.entities)}"
        raise SimulatorError(f"there is no entity '{entity}' ({hint})")
    if not isinstance(rows, list):
        raise SimulatorError(f"{entity} must be a list of records")
    return rows


def _record(bundle: ir.Bundle, entity: str, row, number: int) -> dict:
    where = f"{entity} #{number}"
    if not isinstance(row, dict):
        raise SimulatorError(f"{where} must be a mapping of fields to values")
    fields = {f.name: f for f in bundle.entities[entity].fields}
    record = {}
    for name, value in row.items():
        if name == "id":
            record["id"] = value
            continue
        field = fields.get(name)
        if field is None:
            hint = did_you_mean(str(name), fields) or f"its fields are: {', '.join(fields)}"
            raise SimulatorError(f"{where}: {entity} has no field '{name}' ({hint})")
        record[name] = _value(field, value, where)
    return record


def _value(field: ir.EntityField, value, where: str):
    if field.type in ("ref", "list"):
        return value  # ids of other records, as written
    type_ = f"enum:{field.name}" if field.type == "enum" else field.type
    try:
        return coerce(value, type_)
    except EvalError as error:
        raise SimulatorError(f"{where}: {field.name}: {error}") from None


class Simulator:
    def __init__(self, bundle: ir.Bundle, *, flow: str | None = None, caller: str, at: dt.datetime,
                 records: dict[str, list[dict]] | None = None, agents: Iterable[str] | None = None,
                 plain_text: bool = False, dialed: str | None = None):
        """The call starts in `flow`, or in the flow the number `dialed` enters (one of them is given)."""
        if flow is None:
            flow = _flow_of(bundle, dialed)
        if flow not in bundle.flows:
            hint = did_you_mean(flow, bundle.flows) or f"the flows are: {', '.join(sorted(bundle.flows))}"
            raise SimulatorError(f"there is no flow '{flow}' ({hint})")
        agents = list(bundle.agents) if agents is None else list(agents)
        for agent in agents:
            if agent not in bundle.agents:
                hint = did_you_mean(agent, bundle.agents) or f"the agents are: {', '.join(bundle.agents)}"
                raise SimulatorError(f"there is no agent '{agent}' ({hint})")
        self.bundle, self.flow, self.caller, self.started = bundle, flow, caller, at
        self.dialed = dialed
        self.crm = MemoryCrm(bundle, records)
        self.center = CallCenter(bundle, epoch=at, crm=self.crm, http=self._http, prompt_ms=prompt_ms,
                                 options=OPTIONS, test=True)
        self.rows: list = []        # the call's event log rows, for the edge to write
        self.agents = agents
        self.plain = plain_text
        self.out: list[str] = []
        self.entries: list[Entry] = []  # everything shown with a clock, as data
        self.summarised = False
        self._visit = None          # the queue visit last shown
        self._connected = False     # "connected to ..." shown for the current agent
        self._where: str | None = None  # the number or voicemail box the call went to

    # ------------------------------------------------------------------ the caller's lines

    @property
    def over(self) -> bool:
        return self.summarised

    @property
    def visited(self) -> list[tuple[str, str]]:
        """(flow, step id) of every step the call has taken, in order (subflows' steps included)."""
        rows = [*self.rows, *self.center.rows]
        return [(row.data["flow"], row.data["step_id"]) for row in rows
                if isinstance(row, CallEvent) and row.name == "StepEntered"]

    @property
    def current(self) -> tuple[str, str] | None:
        """(flow, step id) where the call is now; None once it is over."""
        state = self._state
        if self.over or state.wait in _OVER or state.flow is None or state.step is None:
            return None
        return state.flow, state.step

    @property
    def call(self):
        """The call's row in the event log (`runtime.storage.Call`): flow, outcome, queue, agent."""
        return self.center.calls[CALL_ID].record

    @property
    def ringing_agent(self) -> str | None:
        return next((agent for agent, call in self.center.ringing.items() if call == CALL_ID), None)

    @property
    def agent_on_call(self) -> str | None:
        return self._state.agent if self._state.wait == engine.CONNECTED else None

    def start(self) -> list[str]:
        for agent in self.agents:
            self.center.login(agent, self.started)
        self.center.take_outbox()
        self.rows.extend(self.center.take_rows())
        title = self.bundle.flows[self.flow].title
        self._say(f"call from {self.caller} to flow {self.flow}{f' ({title})' if title else ''}; "
                  f"agents ready: {', '.join(self.agents) or 'none'}", "start", caller=self.caller, flow=self.flow,
                  dialed=self.dialed, agents=list(self.agents))
        self.center.start_call(CALL_ID, caller=self.caller, flow=self.flow, dialed=self.dialed, at=self.started)
        self._run()
        return self._take()

    def feed(self, line: str) -> list[str]:
        """One line from the caller.  A line that means nothing raises SimulatorError and changes nothing."""
        words = line.strip()
        if not words or self.over:
            return self._take()
        action = _ACTIONS.get(words.lower())
        if action is not None:
            action(self)
        elif _WAIT.fullmatch(words.lower()):
            self._wait(_WAIT.fullmatch(words.lower()).group("amount"))
        elif all(ch in KEYS for ch in words.replace(" ", "")):
            self._press(words.replace(" ", ""))
        else:
            raise SimulatorError(f"'{words}' is neither keys (0-9, * and #) nor a command; type help")
        self._run()
        return self._take()

    def finish(self) -> list[str]:
        """The end of the session: the caller hangs up if still on the line, then the summary."""
        if not self.over:
            self._hangup()
            self._run()
        return self._take()

    # ------------------------------------------------------------------ what each line does

    def _press(self, keys: str) -> None:
        for key in keys:  # the flow may move on after any key, so prompts play out in between
            self.center.press(CALL_ID, key, self.center.now)
            self._run()

    def _wait(self, amount: str | None) -> None:
        if amount is None:
            until = self.center.next_due()
            if until is None:
                return self._say("nothing more happens by itself; press keys, answer or hang up", "nothing_due")
        else:
            until = self.center.now + dt.timedelta(milliseconds=wait_ms(amount))
        self.center.advance(until)

    def _answer(self) -> None:
        agent = self.ringing_agent
        if agent is None:
            raise SimulatorError("no agent's phone is ringing for this call")
        self.center.agent_answers(agent, self.center.now)

    def _agent_hangup(self) -> None:
        if self._state.wait != engine.CONNECTED:
            raise SimulatorError("no agent is on the call")
        agent = self._state.agent
        self.center.agent_hangs_up(CALL_ID, self.center.now)
        self._say(f"{self._agent(agent)} left the call", "agent_left", agent=agent)

    def _hangup(self) -> None:
        self._say("the caller hangs up", "caller_hangup")
        self.center.caller_hangs_up(CALL_ID, self.center.now)

    def _quit(self) -> None:
        if not self.over:
            self._hangup()

    def _help(self) -> None:
        self.out.extend(HELP.splitlines())

    # ------------------------------------------------------------------ running and showing

    @property
    def _state(self) -> engine.CallState:
        return self.center.calls[CALL_ID].state

    def _run(self) -> None:
        """Play the call on until it is someone's turn (or it is over), showing what happens."""
        self._show()
        for _ in range(MAX_STEPS_ALONE):
            if self._state.wait not in _RUNNING_ALONE and self._state.prompt is None:
                break
            due = self.center.next_due()
            if due is None:
                break
            self.center.advance(due)
            self._show()
        else:
            self._say(f"the flow has played {MAX_STEPS_ALONE} prompts without waiting for the caller; stopped here",
                      "talks_forever", prompts=MAX_STEPS_ALONE)
            self._hangup()
            self._show()
        if self._state.wait in _OVER and not self.summarised:
            self._summary()

    def _show(self) -> None:
        self._show_faults()  # before the fallback's prompts they cause
        for media in self.center.take_outbox():
            if isinstance(media.command, _ACD_MEDIA):
                self._show_queue()
            text = self._describe(media.command)
            if text:
                self._show_line(media.at, text, spoken=media.command.text if isinstance(media.command, c.Say) else None,
                                sound=media.command.sound if isinstance(media.command, c.Play) else None,
                                what=type(media.command).__name__, facts=_facts(media.command))
        self._show_queue()
        self._show_agent()

    def _show_faults(self) -> None:
        rows = self.center.take_rows()
        self.rows.extend(rows)
        for row in rows:
            if isinstance(row, CallEvent) and row.name == "RuntimeFault":
                where = "/".join(str(row.data.get(k)) for k in ("flow", "step_id") if row.data.get(k))
                self._say(f"error in {where or 'the flow'}: {row.data.get('message')} (the flow's fallback follows)",
                          "fault", where=where, message=row.data.get("message"))

    def _show_queue(self) -> None:
        visit = self.center.calls[CALL_ID].visit
        if visit is None or visit is self._visit:
            return
        self._visit = visit
        queue = self.bundle.queues.get(visit.queue)
        position = self.center.acd.position(CALL_ID)
        self._say(f"waiting in queue {visit.queue}{f' ({queue.title})' if queue and queue.title else ''}"
                  f"{f', position {position}' if position else ''}"
                  f"{f', music {queue.music}' if queue else ''}", "queue", queue=visit.queue,
                  title=queue.title if queue else None, position=position, music=queue.music if queue else None)

    def _show_agent(self) -> None:
        connected = self._state.wait == engine.CONNECTED
        if connected and not self._connected:
            self._say(f"connected to {self._agent(self._state.agent)}", "connected", agent=self._state.agent)
        self._connected = connected

    def _describe(self, command) -> str | None:
        describe = _DESCRIBE.get(type(command))
        return describe(self, command) if describe else None

    def _http(self, request: c.HttpRequest) -> str:
        self._show()  # what came before the request is shown before it
        url = c.to_dict(request)["url"]
        self._say(f"http {request.method} {url}: failed ({HTTP_FAILURE})", "http", method=request.method, url=url)
        return HTTP_FAILURE

    def _summary(self) -> None:
        self.summarised = True
        state, end = self._state, self.center.calls[CALL_ID].record.ended_at or self.center.now
        self.out.append(f"call ended: {state.ended or 'hangup'}{f' ({self._where})' if self._where else ''} "
                        f"after {_elapsed(end - self.started)} at {self._clock(end)}")
        self.out.append(f"  queue: {state.queue or 'none'}")
        self.out.append(f"  agent: {self._agent(state.agent) if state.agent else 'none'}")
        for verb, rows in (("created", self.crm.created), ("updated", self.crm.updated)):
            for entity, row in rows:
                self.out.append(f"  {verb} {entity} {row.get('id')}: {_json(row)}")
        if not self.crm.created and not self.crm.updated:
            self.out.append("  records: none created or updated")

    def _agent(self, name: str | None) -> str:
        agent = self.bundle.agents.get(name or "")
        return f"{name} ({agent.title})" if agent is not None and agent.title else str(name)

    def _say(self, text: str, what: str = "", **facts) -> None:
        self._show_line(self.center.now, text, what=what, facts=facts)

    def _show_line(self, at: dt.datetime, text: str, spoken: str | None = None, sound: str | None = None,
                   what: str = "", facts: dict | None = None) -> None:
        self.out.append(f"[{self._clock(at)}] {text}")
        self.entries.append(Entry(at, text, spoken, sound, what, facts or {}))

    def _clock(self, at: dt.datetime) -> str:
        moment = at.astimezone(self.started.tzinfo)
        return moment.strftime("%H:%M:%S") + (f".{moment.microsecond // 1000:03d}" if moment.microsecond else "")

    def _take(self) -> list[str]:
        out, self.out = self.out, []
        return out


def _flow_of(bundle: ir.Bundle, dialed: str | None) -> str:
    if dialed is None:
        raise SimulatorError("give the flow, or the number dialled")
    flow = bundle.numbers.get(dialed)
    if flow is None:
        known = ", ".join(sorted(bundle.numbers)) or "none"
        raise SimulatorError(f"no flow answers the number '{dialed}' (the numbers are: {known})")
    return flow


def _facts(command) -> dict:
    return {f.name: getattr(command, f.name) for f in dataclasses.fields(command)} \
        if dataclasses.is_dataclass(command) else {}


def wait_ms(amount: str) -> int:
    """The milliseconds of `wait AMOUNT`: 10s, 1m30s, 500ms, or plain seconds."""
    if not _DURATION.fullmatch(amount):
        raise SimulatorError(f"'{amount}' is not a duration such as 10s, 1m30s or 500ms")
    return int(amount) * 1000 if amount.isdigit() else parse_duration(amount)


def _elapsed(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _json(row: dict) -> str:
    return json.dumps(plain(row), ensure_ascii=False, default=str)


def _went(sim: Simulator, text: str, where: str) -> str:
    sim._where = where
    return text


_ACTIONS: dict[str, Callable[[Simulator], None]] = {
    "answer": Simulator._answer, "agent-hangup": Simulator._agent_hangup, "hangup": Simulator._hangup,
    "help": Simulator._help, "quit": Simulator._quit,
}

_ACD_MEDIA = (a.RingAgent, a.StopRinging, a.Bridge, a.Announce, a.CallBack)

_DESCRIBE: dict[type, Callable[[Simulator, object], str | None]] = {
    c.Answer: lambda sim, cmd: "the call is answered",
    c.Say: lambda sim, cmd: f"{'> say: ' if sim.plain else '🔊 '}{cmd.text}",
    c.Play: lambda sim, cmd: f"{'> play: ' if sim.plain else '🎵 '}{cmd.sound}",
    c.StopPrompt: lambda sim, cmd: "(the prompt is cut short)",
    c.StartRecording: lambda sim, cmd: "recording the call",
    c.TransferToNumber: lambda sim, cmd: _went(sim, f"transferred to {cmd.number}", f"to {cmd.number}"),
    c.Voicemail: lambda sim, cmd: _went(sim, f"voicemail box {cmd.box}: the caller leaves a message"
                                        f"{', to be called back' if cmd.callback else ''}", f"box {cmd.box}"),
    c.Hangup: lambda sim, cmd: "the flow hangs up" + (f" ({cmd.reason})" if cmd.reason != "hangup" else ""),
    a.RingAgent: lambda sim, cmd: f"ringing agent {sim._agent(cmd.agent)}: type answer, or wait",
    a.StopRinging: lambda sim, cmd: f"{sim._agent(cmd.agent)} stops ringing",
    a.Announce: lambda sim, cmd: "announcement: " + ", ".join(
        part for part in (f"position {cmd.position}" if cmd.position else "",
                          f"expected wait {cmd.expected_wait_s}s" if cmd.expected_wait_s is not None else "") if part),
}


def play(sim: Simulator, lines: Iterable[str], show: Callable[[str], None], error: Callable[[str], None], *,
         scripted: bool) -> int:
    """A whole session: the start, every line, and the summary at `quit` or the end of the lines.
    Interactively a bad line is reported and the session goes on; in a script it ends the call,
    and the result is 1."""
    status = 0
    for line in sim.start():
        show(line)
    numbered = enumerate(lines, 1)
    while not sim.over:  # the next line is read only while the call goes on (input() would wait)
        number, line = next(numbered, (0, None))
        if line is None:
            break
        if scripted and line.strip():
            show(f"< {line.strip()}")
        try:
            for out in sim.feed(line):
                show(out)
        except SimulatorError as problem:
            error(f"line {number}: {problem}" if scripted else str(problem))
            if scripted:
                status = 1
                break
    for line in sim.finish():
        show(line)
    return status
