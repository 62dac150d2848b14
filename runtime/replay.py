"""A logged call as a flow test file, so a problem seen on a real call becomes a regression test.

`flowdesk test --from-call ID` reads the call's rows from the event log (`calls`, `call_events`)
and writes the scripted call that must do the same again, in the format of `runtime/scenario.py`:

- steps: `hear` for each Say (its text) and Play (its sound), `press` for keys, `wait` where a timer
  fired (the timer's own length: prompts take no time in tests), `answer` for the agent who picked
  up, `agent_hangs_up`, and `hangup` when the caller hung up (after a `wait` as long as they waited,
  short of any timer, so a caller who hung up in a queue hangs up in it);
- `http`: each request with what it got.  A reply is stubbed as it came; no reply before the
  engine's timer is `fail: timeout`; an HttpFailed is `fail: refused`.  A stub matches the path of
  the address, so the test holds in every environment;
- `crm`: the records the call's lookups found; a reference the lookup followed (the flow read
  through it) becomes the referenced record of its own entity;
- `agents`: those who answered; `expect`: queue, agent, how the call ended, records created and
  updated, a transfer and a voicemail box.

What a test's world numbers differently is left out: record ids the CRM gave on the call (a prompt
that speaks one is heard up to it), the call's id, moments.  Secrets are masked in the log; stubs
match neither headers nor bodies, and an address that carried a secret is stubbed for any request
of its method.  Queue announcements are not logged: where the call waited until its queue gave up
(an overflow), the test waits as long and hears the position announcements of that wait.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import zip_longest
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from compiler import ir
from dsl.literals import format_duration
from runtime import events as e
from runtime.commands import MASK
from runtime.scenario import Defaults
from runtime.storage import Call, CallEvent, EventLog

STORAGE_ASKS = ("Lookup", "CreateRecord", "UpdateRecord")
STORAGE_ANSWERS = ("LookupResult", "RecordWritten", "StorageFailed")
ANNOUNCEMENT = "position"  # what a test hears of every queue announcement


class ReplayError(Exception):
    """The call cannot be made into a test; the message says why."""


@dataclass
class Replay:
    test_file: dict                                   # the test file, as YAML will show it
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ reading the log

def read_call(database_url: str, call_id: str) -> tuple[Call, list[CallEvent]]:
    """The call's record and its events, or a ReplayError that names the database searched."""
    where = shown_url(database_url)
    _require_database(database_url, where)
    try:
        log = EventLog(database_url)
        call, rows = log.call(call_id), log.events(call_id)
    except SQLAlchemyError as error:
        raise ReplayError(f"cannot read the event log at {where}: {_first_line(error)}") from None
    if call is None:
        raise ReplayError(f"there is no call '{call_id}' in the event log at {where}")
    if not rows:
        raise ReplayError(f"call '{call_id}' was logged without its events (the call centre ran with event "
                          "logging off), so what happened on it is not known")
    return call, rows


def shown_url(url: str) -> str:
    """The database URL for messages, without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _require_database(url: str, where: str) -> None:
    """Opening a SQLite file that is not there would make an empty one: say it is missing instead."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ReplayError(f"'{url}' is not a database URL (e.g. sqlite:///path/flowdesk.db)") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not Path(parsed.database).is_file():
        raise ReplayError(f"there is no event log at {where}: no such file")


def _first_line(error: SQLAlchemyError) -> str:
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]


# ------------------------------------------------------------------ the test file

def from_call(call: Call, rows: list[CallEvent], bundle: ir.Bundle) -> Replay:
    """The test file that makes `call` again on `bundle`, from its logged rows."""
    rows = _live(rows)
    storage = _pairs(rows, STORAGE_ASKS, lambda row: row.name in STORAGE_ANSWERS)
    created = _created(storage)
    warnings: list[str] = []
    test_file = {**_caller(call, bundle), **_world(rows, storage, created, bundle, warnings)}
    test_file["tests"] = [_test(call, rows, storage, created, bundle, warnings)]
    return Replay(test_file=test_file, warnings=warnings + _warnings(call, rows, bundle))


def _caller(call: Call, bundle: ir.Bundle) -> dict:
    zone = project_zone(bundle)
    return {**_target(call, bundle), "from": call.caller,
            "at": call.started_at.astimezone(ZoneInfo(zone)).replace(tzinfo=None), "timezone": zone}


def _world(rows, storage, created, bundle: ir.Bundle, warnings: list[str]) -> dict:
    """What the call met: the records found, the agents who answered, the outside systems' replies."""
    crm = _crm(storage, bundle, [(entity, id_) for entity, id_, _ in created])
    agents = list(dict.fromkeys(row.data["agent"] for row in rows if row.name == "AgentAnswered"))
    http = _http(rows, warnings)
    return {key: value for key, value in (("crm", crm), ("agents", agents), ("http", http)) if value}


def _test(call: Call, rows, storage, created, bundle: ir.Bundle, warnings: list[str]) -> dict:
    script = _Script(rows, call.id, {seq: str(id_) for _, id_, seq in created}, bundle)
    expect = _expect(call, rows, storage)
    if script.hung_up_in is not None and expect.pop("ended", None) is not None:
        warnings.append(f"the caller hung up while '{script.hung_up_in}' played; prompts take no time in "
                        "flow tests, so the test does not say how the call ended")
    at = _caller(call, bundle)["at"]
    return {"name": f"call {call.id} from {call.caller} at {at:%Y-%m-%d %H:%M}", "steps": script.steps,
            "expect": expect}


def to_yaml(replay: Replay, call: Call) -> str:
    header = (f"# Call {call.id} from {call.caller}, made into a flow test from the event log\n"
              f"# (flowdesk test --from-call {call.id}): the call must go the same way again.\n")
    return header + yaml.safe_dump(replay.test_file, allow_unicode=True, sort_keys=False, width=100)


def project_zone(bundle: ir.Bundle) -> str:
    """The time zone of the project's hours when they agree on one, else the test files' default."""
    zones = {hours.timezone for hours in bundle.hours.values()}
    return zones.pop() if len(zones) == 1 else Defaults.model_fields["timezone"].default


def _target(call: Call, bundle: ir.Bundle) -> dict:
    """The number dialled when it still starts the call's flow here (or no flow took it), else the flow."""
    if call.dialed and (not call.flow or bundle.numbers.get(call.dialed) == call.flow):
        return {"number": call.dialed}
    return {"flow": call.flow}


def _live(rows: list[CallEvent]) -> list[CallEvent]:
    """The rows that changed the call: events the engine ignored (a late reply, a key after the
    end) are dropped with their Ignored record."""
    ignored = {i for i, (row, following) in enumerate(zip(rows, rows[1:]))
               if row.kind == "event" and following.name == "Ignored" and following.data.get("event") == row.name}
    return [row for i, row in enumerate(rows) if i not in ignored and row.name != "Ignored"]


def _pairs(rows: list[CallEvent], asks: tuple[str, ...],
           is_answer: Callable[[CallEvent], bool]) -> list[tuple[CallEvent, CallEvent | None]]:
    """Each request of the call with its answer.  The call waits for one answer at a time, so the
    n-th answer is the n-th request's, even where an adapter that answers at once logged it first."""
    asked = [row for row in rows if row.kind == "command" and row.name in asks]
    answers = [row for row in rows if row.kind == "event" and is_answer(row)]
    return list(zip_longest(asked, answers[:len(asked)]))


# ------------------------------------------------------------------ steps

class _Script:
    """The call's rows as test steps, in order.  It keeps what a test's clock needs to go the
    same way: when the last step happened, the engine's timers running, the prompt playing."""

    def __init__(self, rows: list[CallEvent], call_id: str, created_ids: dict[int, str], bundle: ir.Bundle):
        """`created_ids`: the id of each record the call created, by the seq of its RecordWritten."""
        self.spoken_ids = [call_id]                # ids a prompt may speak that a test numbers differently
        self.announced = _announcements(rows, bundle)
        self.lengths = {row.data["timer_id"]: row.data["ms"] for row in rows if row.name == "StartTimer"}
        self.running: set[str] = set()
        self.playing: dict[str, CallEvent] = {}    # prompt id -> its Say or Play
        self.last_at: dt.datetime | None = None
        self.steps: list[dict] = []
        self.hung_up_in: str | None = None         # a plain prompt the caller hung up in
        for row in rows:
            if row.seq in created_ids:
                self.spoken_ids.append(created_ids[row.seq])
            handler = _SCRIPT.get(row.name)
            if handler is not None:
                handler(self, row)

    def add(self, step: dict, row: CallEvent) -> None:
        if "press" in step and self.steps and "press" in self.steps[-1]:
            self.steps[-1]["press"] += step["press"]  # keys typed one after another: one press
        else:
            self.steps.append(step)
        self.last_at = row.at

    def prompt(self, row: CallEvent) -> None:
        self.playing[row.data["prompt_id"]] = row
        heard = _heard(row.data["text"], self.spoken_ids) if row.name == "Say" else row.data["sound"]
        self.add({"hear": heard}, row)

    def prompt_over(self, row: CallEvent) -> None:
        self.playing.pop(row.data["prompt_id"], None)

    def timer(self, row: CallEvent) -> None:
        timer_id = row.data["timer_id"]
        if row.name == "StartTimer":
            self.running.add(timer_id)
            return
        self.running.discard(timer_id)
        if row.name == "TimerFired" and timer_id in self.lengths:
            self.add({"wait": format_duration(self.lengths[timer_id])}, row)

    def hangup(self, row: CallEvent) -> None:
        """Prompts take no time in a test: a caller who hung up after one finished waits as long
        (short of any timer still running) first, so the call is where it was, e.g. in its queue.
        One who hung up during a prompt hangs up at once, in the prompt still."""
        plain = [p for p in self.playing.values() if not p.data.get("barge_in")]
        if plain:
            self.hung_up_in = plain[-1].data.get("text") or plain[-1].data.get("sound")
        elif not self.playing and self.last_at is not None:
            self._wait_until(row.at)
        self.add({"hangup": True}, row)

    def _wait_until(self, at: dt.datetime) -> None:
        ms = int((at - self.last_at) / dt.timedelta(milliseconds=1))
        if self.running:
            ms = min(ms, min(self.lengths.get(t, ms + 1) for t in self.running) - 1)
        ms = ms - ms % 1000 if ms >= 1000 else ms
        if ms > 0:
            self.steps.append({"wait": format_duration(ms)})

    def overflow(self, row: CallEvent) -> None:
        for _ in range(self.announced.get(row.seq, 0)):
            self.add({"hear": ANNOUNCEMENT}, row)


_SCRIPT: dict[str, Callable[[_Script, CallEvent], None]] = {
    "Say": _Script.prompt, "Play": _Script.prompt, "PromptFinished": _Script.prompt_over,
    "StopPrompt": _Script.prompt_over, "StartTimer": _Script.timer, "CancelTimer": _Script.timer,
    "TimerFired": _Script.timer, "QueueOverflow": _Script.overflow, "CallerHungUp": _Script.hangup,
    "DigitPressed": lambda script, row: script.add({"press": row.data["digit"]}, row),
    "AgentAnswered": lambda script, row: script.add({"answer": row.data["agent"]}, row),
    "AgentLeft": lambda script, row: script.add({"agent_hangs_up": True}, row),
}


def _heard(text: str, spoken_ids: list[str]) -> str:
    """A prompt as the test hears it: the longest part without an id a test numbers differently."""
    for id_ in spoken_ids:
        if id_ and id_ in text:
            text = max(text.split(id_), key=len).strip()
    return text


def _announcements(rows: list[CallEvent], bundle: ir.Bundle) -> dict[int, int]:
    """Position announcements of each wait that ended in an overflow (by the overflow's seq): the
    test waits as long in that queue and hears them, though the log does not show them."""
    counts, queue, since = {}, None, None
    for row in rows:
        if row.name == "Enqueue":
            queue, since = row.data["queue"], row.at
        elif row.name == "QueueOverflow" and queue in bundle.queues and since is not None:
            every = bundle.queues[queue].announce_position_ms
            waited = int((row.at - since) / dt.timedelta(milliseconds=1))
            counts[row.seq] = (waited - 1) // every if every else 0
            queue, since = row.data.get("target"), row.at
    return counts


# ------------------------------------------------------------------ outside systems and the CRM

def _http(rows: list[CallEvent], warnings: list[str]) -> list[dict]:
    timers = {following.data["timer_id"] for row, following in zip(rows, rows[1:])
              if row.name == "HttpRequest" and following.name == "StartTimer"}  # the engine's bound on a request
    pairs = _pairs(rows, ("HttpRequest",), lambda row: row.name in ("HttpReply", "HttpFailed")
                   or row.name == "TimerFired" and row.data["timer_id"] in timers)
    stubs: dict[tuple[str, str], dict] = {}
    for request, answer in pairs:
        stub = _stub(request, answer)
        key = (stub["method"], stub["url"])
        if key in stubs and stubs[key] != stub:
            warnings.append(f"{stub['method']} {stub['url'] or 'requests'} got different answers on the call; "
                            "the test answers every such request with the first")
        stubs.setdefault(key, stub)
        if request.data["url"] == MASK:
            warnings.append(f"the address of a {stub['method']} request carried a secret and is masked in the "
                            f"log: its stub answers any {stub['method']} request the test makes")
    return sorted(stubs.values(), key=lambda stub: stub["url"] == "")  # the catch-all ones last


def _stub(request: CallEvent, answer: CallEvent | None) -> dict:
    stub = {"method": request.data["method"], "url": _address(request.data["url"])}
    if answer is None or answer.name == "TimerFired":
        return {**stub, "fail": "timeout"}
    if answer.name == "HttpFailed":
        return {**stub, "fail": "refused"}
    reply = e.from_dict(answer.data)
    return {**stub, "status": reply.status, **({"body": _yaml_value(reply.body)} if reply.body is not None else {})}


def _address(url: str) -> str:
    """The part of the address a stub matches: its path and query, the same in every environment."""
    if url == MASK:
        return ""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return path or url


def _created(storage: list[tuple[CallEvent, CallEvent | None]]) -> list[tuple[str, Any, int]]:
    """(entity, id, seq of its RecordWritten) of each record the call created."""
    return [(ask.data["entity"], answer.data.get("record_id"), answer.seq) for ask, answer in storage
            if ask.name == "CreateRecord" and answer is not None and answer.name == "RecordWritten"]


def _crm(storage, bundle: ir.Bundle, created: list[tuple[str, Any]]) -> dict[str, list[dict]]:
    tables: dict[str, dict[Any, dict]] = {}
    for ask, answer in storage:
        if ask.name == "Lookup" and answer is not None and answer.name == "LookupResult":
            record = e.from_dict(answer.data).record
            if record and (ask.data["entity"], record.get("id")) not in created:
                _seed(tables, bundle, ask.data["entity"], record)
    return {entity: list(rows.values()) for entity, rows in tables.items()}


def _seed(tables: dict[str, dict[Any, dict]], bundle: ir.Bundle, entity: str, record: dict) -> None:
    """A found record for the test's CRM.  A reference given as the record it points at (the lookup
    followed it) is that record's id again, and the record it points at is seeded too."""
    targets = {f.name: f.target for f in bundle.entities[entity].fields} if entity in bundle.entities else {}
    row = {}
    for name, value in record.items():
        if isinstance(value, dict) and targets.get(name):
            _seed(tables, bundle, targets[name], value)
            value = value.get("id")
        row[name] = _yaml_value(value)
    tables.setdefault(entity, {}).setdefault(row.get("id"), {}).update(row)


def _yaml_value(value: Any) -> Any:
    """A logged value as a test file writes it: money as text, as the log shows it."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {str(k): _yaml_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_yaml_value(v) for v in value]
    return value


# ------------------------------------------------------------------ what must happen

def _expect(call: Call, rows: list[CallEvent], storage) -> dict:
    expect = {"queue": call.queue, "agent": call.agent, "ended": call.end_reason}
    for key, command, field_ in (("transferred_to", "TransferToNumber", "number"), ("voicemail", "Voicemail", "box")):
        found = [row.data[field_] for row in rows if row.name == command]
        expect[key] = found[-1] if found else None
    for key, command in (("created", "CreateRecord"), ("updated", "UpdateRecord")):
        written: dict[str, list[dict]] = {}
        for ask, answer in storage:
            if ask.name == command and answer is not None and answer.name == "RecordWritten":
                written.setdefault(ask.data["entity"], []).append(_comparable(ask.data["fields"], call.id))
        expect[key] = written or None
    return {key: value for key, value in expect.items() if value is not None}


def _comparable(fields: dict, call_id: str) -> dict:
    """The fields a test can expect: not ids, the call's id or moments, which differ in a test."""
    return {name: value for name, value in fields.items()
            if name != "id" and value != call_id and not _is_moment(value)}


def _is_moment(value: Any) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _warnings(call: Call, rows: list[CallEvent], bundle: ir.Bundle) -> list[str]:
    warnings = []
    if call.bundle_hash != bundle.hash:
        warnings.append(f"call {call.id} ran on bundle {call.bundle_hash}, the project compiles to {bundle.hash}: "
                        "the test follows the call, and fails where the flows have changed since")
    if call.end_reason is None:
        warnings.append(f"call {call.id} has no end in the log (still going, or the runtime stopped): "
                        "the test expects nothing of how it ends")
    if any(row.name == "StorageFailed" for row in rows):
        warnings.append("the CRM failed on the call; a flow test's CRM does not fail, so the test goes another way")
    return warnings
