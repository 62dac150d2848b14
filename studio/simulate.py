"""The simulator panel: a test call through the project's flows, walked from the browser.

    /workspace/simulate                         choose the number (or flow), caller, date and time
    POST /workspace/simulate/start              compiles the files as they are now and starts the call
    /workspace/simulate/{id}                    the call: keypad, transcript, lit graph, records
    POST /workspace/simulate/{id}/act           a key, a wait, the agent answering or leaving, a hang-up
    /workspace/simulate/{id}/speech/{n}         the n-th entry's prompt as speech (WAV)

The call is the terminal simulator's (`runtime.simulator.Simulator`, what `flowdesk call` drives),
run on the project's files as saved now, so a draft can be tried before it is published.  Time is
simulated, outside systems fail, and records live in memory: the CRM is an in-memory one, empty or
seeded with records typed on the start page, never the studio's database, because a draft's schemas
need not match the published tables and a test call must not read or change real customers.
Sessions live in this process's memory, per user, a few each, and go after a while unused; nothing
is written to the database or the event log.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

import yaml
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from compiler import CompileResult
from compiler import graph as flow_graph
from compiler import ir
from dsl.diagnostics import render
from runtime import simulator, tts
from studio import auth
from studio.workspace import compile_with, may_edit, svg_of

MAX_PER_USER = 3            # calls a user keeps open; starting another drops the oldest
MAX_SESSIONS = 50           # in the whole studio
IDLE_S = 30 * 60            # a call untouched this long is gone
MAX_WAIT = dt.timedelta(hours=1)    # one wait; longer ones would run the queue's timers for ages
MAX_KEYS = 64
MAX_RECORDS_TEXT = 50_000
DEFAULT_ZONE = "Asia/Shanghai"
CALLER = re.compile(r"[0-9+*#]{1,32}")
KEYPAD = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"]
OUTCOMES = {"caller_hangup": "主叫挂机", "hangup": "流程挂机", "transferred": "转接外线", "voicemail": "留言",
            "error": "流程出错", "unknown_number": "空号"}


class Refused(Exception):
    """What the user asked for cannot be done; the message says why, in the page's words."""


# ------------------------------------------------------------------ sessions

@dataclass
class Session:
    id: str
    user: str
    sim: simulator.Simulator
    target: str             # what was dialled, as the page names it
    touched: float = field(default_factory=time.monotonic)


class Sessions:
    """The calls being simulated, in memory: a few per user, dropped when unused for IDLE_S."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def add(self, session: Session) -> Session:
        with self._lock:
            self._expire()
            mine = sorted((s for s in self._by_id.values() if s.user == session.user), key=lambda s: s.touched)
            everyone = sorted(self._by_id.values(), key=lambda s: s.touched)
            for old in mine[:max(0, len(mine) - MAX_PER_USER + 1)] + everyone[:max(0, len(everyone) - MAX_SESSIONS + 1)]:
                self._by_id.pop(old.id, None)
            session.touched = self.clock()
            self._by_id[session.id] = session
            return session

    def get(self, user: str, session_id: str) -> Session | None:
        """The user's own call, or None when there is none by that id (or it expired)."""
        with self._lock:
            self._expire()
            session = self._by_id.get(session_id)
            if session is None or session.user != user:
                return None
            session.touched = self.clock()
            return session

    def __len__(self) -> int:
        return len(self._by_id)

    def _expire(self) -> None:
        cutoff = self.clock() - IDLE_S
        for gone in [s.id for s in self._by_id.values() if s.touched < cutoff]:
            del self._by_id[gone]


def sessions_of_app(app) -> Sessions:
    state = app.state
    if getattr(state, "simulations", None) is None:
        state.simulations = Sessions()
    return state.simulations


def sessions_of(request: Request) -> Sessions:
    return sessions_of_app(request.app)


# ------------------------------------------------------------------ reading the start form

@dataclass(frozen=True)
class Choice:
    flow: str | None
    dialed: str | None
    caller: str
    at: dt.datetime
    records: dict
    agents: list[str]


def zone_of(bundle: ir.Bundle | None) -> ZoneInfo:
    """The project's time zone: its opening hours' (they are what a time of day means to a flow)."""
    zones = [h.timezone for h in bundle.hours.values()] if bundle is not None else []
    return ZoneInfo(zones[0] if zones else DEFAULT_ZONE)


def read_choice(bundle: ir.Bundle, form) -> Choice:
    target = str(form.get("target", ""))
    kind, _, name = target.partition(":")
    if kind == "number" and name in bundle.numbers:
        flow, dialed = None, name
    elif kind == "flow" and name in bundle.flows:
        flow, dialed = name, None
    else:
        raise Refused(f"没有号码或流程“{name or target}”:请从列表中选择要拨打的号码或流程。")
    caller = str(form.get("caller", "")).strip()
    if not CALLER.fullmatch(caller):
        raise Refused(f"主叫号码“{caller}”不对:请填写 1 到 32 位数字(可含 + * #),例如 13800138000。")
    return Choice(flow, dialed, caller, read_moment(bundle, form), read_records(bundle, str(form.get("records", ""))),
                  read_agents(bundle, form))


def read_moment(bundle: ir.Bundle, form) -> dt.datetime:
    day, clock = str(form.get("date", "")).strip(), str(form.get("time", "")).strip()
    try:
        moment = dt.datetime.fromisoformat(f"{day}T{clock}")
    except ValueError:
        raise Refused(f"日期“{day}”或时间“{clock}”不对:日期写成 2026-11-23,时间写成 10:00。") from None
    if moment.tzinfo is not None:
        raise Refused(f"时间“{clock}”不要带时区:按项目的时区 {zone_of(bundle).key} 填写。")
    return moment.replace(tzinfo=zone_of(bundle))


def read_records(bundle: ir.Bundle, text: str) -> dict:
    if not text.strip():
        return {}
    if len(text) > MAX_RECORDS_TEXT:
        raise Refused(f"预置记录太长(最多 {MAX_RECORDS_TEXT} 个字符)。")
    try:
        return simulator.load_records(bundle, yaml.safe_load(text))
    except yaml.YAMLError as error:
        raise Refused(f"预置记录不是正确的 YAML:{error}") from None
    except simulator.SimulatorError as error:
        raise Refused(f"预置记录有误:{error}") from None


def read_agents(bundle: ir.Bundle, form) -> list[str]:
    """The agents logged in and ready; all of them when the form does not list them."""
    if not form.get("agents_listed"):
        return list(bundle.agents)
    chosen = [str(a) for a in form.getlist("agents")]
    unknown = [a for a in chosen if a not in bundle.agents]
    if unknown:
        raise Refused(f"没有坐席“{unknown[0]}”。")
    return chosen


# ------------------------------------------------------------------ what the caller does

def line_of(form, sim: simulator.Simulator) -> str:
    """The simulator's line for the button pressed, checked first so the user reads why not."""
    action = str(form.get("action", ""))
    if sim.over:
        raise Refused("这通模拟来电已经结束;请重新开始一通。")
    if action == "press":
        return _keys(str(form.get("key", "")))
    if action == "wait":
        return _wait(str(form.get("amount", "")).strip())
    if action == "answer":
        if sim.ringing_agent is None:
            raise Refused("现在没有坐席的电话在响,无法接听。先转人工并等坐席振铃。")
        return "answer"
    if action == "agent-hangup":
        if sim.agent_on_call is None:
            raise Refused("现在没有坐席在通话中。")
        return "agent-hangup"
    if action == "hangup":
        return "hangup"
    raise Refused(f"不认识的操作“{action}”。")


def _keys(keys: str) -> str:
    keys = keys.replace(" ", "")
    if not keys:
        raise Refused("没有输入按键。")
    if len(keys) > MAX_KEYS or any(k not in simulator.KEYS for k in keys):
        raise Refused(f"按键“{keys[:MAX_KEYS]}”不对:只能按 0-9、* 和 #(一次最多 {MAX_KEYS} 个)。")
    return keys


def _wait(amount: str) -> str:
    if not amount:
        return "wait"
    try:
        ms = simulator.wait_ms(amount)
    except simulator.SimulatorError:
        raise Refused(f"等待时长“{amount}”不对:写成 10s、1m30s 或 500ms。") from None
    if dt.timedelta(milliseconds=ms) > MAX_WAIT:
        raise Refused("一次最多等待 1 小时。")
    return f"wait {amount}"


# ------------------------------------------------------------------ what the page shows

@dataclass(frozen=True)
class Picture:
    name: str
    title: str | None
    dot: str
    svg: str | None
    current: bool           # the call is in this flow now


def pictures(bundle: ir.Bundle, first: str, visited: list[tuple[str, str]],
             here: tuple[str, str] | None) -> list[Picture]:
    """A picture of each flow the call went through, in order of first visit, with its path lit."""
    out = []
    for name in dict.fromkeys([first, *(flow for flow, _ in visited)]):
        flow = bundle.flows[name]
        current = here[1] if here and here[0] == name else None
        dot = flow_graph.to_dot(flow, lit={step for f, step in visited if f == name}, current=current)
        out.append(Picture(name, flow.title, dot, svg_of(dot), current is not None))
    return out


def call_facts(sim: simulator.Simulator, zone: dt.tzinfo) -> list[tuple[str, str]]:
    """The call's row as the event log would keep it (queue and agent as they are so far)."""
    call, state = sim.call, sim.center.calls[simulator.CALL_ID].state
    flow = sim.bundle.flows[call.flow]
    shown = lambda at: at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if at else "通话中"
    outcome = call.end_reason
    return [
        ("流程", f"{call.flow}「{flow.title}」" if flow.title else call.flow),
        ("主叫", call.caller), ("被叫", call.dialed or "(直接进入流程)"),
        ("开始", shown(call.started_at)), ("结束", shown(call.ended_at)),
        ("结果", f"{OUTCOMES.get(outcome, outcome)}({outcome})" if outcome else "通话中"),
        ("最后一步", call.last_step or (state.step or "")),
        ("队列", call.queue or state.queue or "无"), ("坐席", call.agent or state.agent or "无"),
    ]


def writes(sim: simulator.Simulator) -> list[dict]:
    """The records the call created or updated, each as it stood after the write."""
    out = []
    for verb, rows in (("新建", sim.crm.created), ("修改", sim.crm.updated)):
        for entity, row in rows:
            declared = sim.bundle.entities.get(entity)
            fields = {f.name: f for f in declared.fields} if declared else {}
            out.append({"verb": verb, "entity": entity, "title": declared.title if declared else None,
                        "id": row.get("id"), "fields": [_field(fields.get(k), k, v) for k, v in row.items() if k != "id"]})
    return out


def _field(declared: ir.EntityField | None, name: str, value) -> tuple[str, str, str]:
    """(label, name, value as shown) of a written field; an enum's choice with its label."""
    label = declared.label if declared is not None and declared.label else name
    choice = next((c for c in declared.choices if c.name == value), None) if declared is not None else None
    shown = "" if value is None else f"{choice.label}({value})" if choice is not None and choice.label else str(value)
    return label, name, shown


def agent_name(bundle: ir.Bundle, name: str | None) -> str:
    agent = bundle.agents.get(name or "")
    return f"{agent.title}({name})" if agent is not None and agent.title else str(name)


def _queue_words(bundle, f) -> str:
    title = f"「{f['title']}」" if f.get("title") else ""
    position = f",排第 {f['position']} 位" if f.get("position") else ""
    music = f",等待音乐 {f['music']}" if f.get("music") else ""
    return f"进入队列 {f['queue']}{title}{position}{music}"


def _announce_words(bundle, f) -> str:
    parts = [f"排第 {f['position']} 位" if f.get("position") else "",
             f"预计等待 {f['expected_wait_s']} 秒" if f.get("expected_wait_s") is not None else ""]
    return "播报排队信息:" + ",".join(p for p in parts if p)


# How the panel words what the session showed (the terminal's lines are in English).
WORDS = {
    "start": lambda b, f: (f"{f['caller']} 来电{',拨打 ' + f['dialed'] if f.get('dialed') else ''},进入流程 {f['flow']};"
                           f"就绪坐席:{'、'.join(agent_name(b, a) for a in f['agents']) or '无'}"),
    "Answer": lambda b, f: "电话接通(应答)",
    "StopPrompt": lambda b, f: "(提示被打断)",
    "StartRecording": lambda b, f: "开始录音",
    "TransferToNumber": lambda b, f: f"转接到外线号码 {f['number']}",
    "Voicemail": lambda b, f: f"进入留言信箱 {f['box']}:主叫留言{',等待回电' if f.get('callback') else ''}",
    "Hangup": lambda b, f: "流程挂机" + (f"({f['reason']})" if f.get("reason") not in (None, "hangup") else ""),
    "RingAgent": lambda b, f: f"坐席 {agent_name(b, f['agent'])} 振铃:可点“坐席接听”,或等待",
    "StopRinging": lambda b, f: f"坐席 {agent_name(b, f['agent'])} 停止振铃",
    "Announce": _announce_words,
    "queue": _queue_words,
    "connected": lambda b, f: f"与坐席 {agent_name(b, f['agent'])} 接通",
    "agent_left": lambda b, f: f"坐席 {agent_name(b, f['agent'])} 离开通话",
    "caller_hangup": lambda b, f: "主叫挂机",
    "http": lambda b, f: f"外部请求 {f['method']} {f['url']}:失败(模拟时不连接外部系统,流程走 else 分支)",
    "fault": lambda b, f: f"流程出错({f.get('where') or '流程'}):{f.get('message')};按流程的出错处理继续",
    "nothing_due": lambda b, f: "不会再自动发生什么了:请按键、接听或挂机",
    "talks_forever": lambda b, f: f"流程连续播放了 {f['prompts']} 个提示仍不等待主叫,已停止",
}


def words(bundle: ir.Bundle, entry: simulator.Entry) -> str:
    """An event of the transcript in the page's words; the simulator's own line for anything else."""
    word = WORDS.get(entry.what)
    try:
        return word(bundle, entry.facts) if word else entry.text
    except (KeyError, TypeError):
        return entry.text


def audio_available() -> bool:
    return all(shutil.which(tool) for tool in ("espeak-ng", "sox"))


# ------------------------------------------------------------------ pages

def _refused(request: Request) -> Response | None:
    from studio.screens import message

    if not may_edit(auth.current_user(request)):
        return message(request, "无权使用", "模拟来电只有值班主管(或项目中的 analyst 角色)可以使用。", 403)
    return None


def _problems(result: CompileResult) -> list[str]:
    return [render(d, result.sources.text_of(d.file)) for d in result.errors]


def _start_page(request: Request, result: CompileResult, form=None, error: str | None = None, status: int = 200):
    from studio.screens import page

    bundle = result.bundle if not result.errors else None
    zone = zone_of(result.bundle)
    now = request.app.state.studio.clock().astimezone(zone)
    given = (lambda name, default: str(form.get(name, default))) if form is not None else (lambda name, default: default)
    return page(request, "simulate.html", {
        "title": "模拟来电", "current": "workspace", "bundle": bundle, "problems": _problems(result),
        "error": error, "zone": zone.key, "target": given("target", ""), "caller": given("caller", "13800138000"),
        "date": given("date", now.date().isoformat()), "time": given("time", now.strftime("%H:%M")),
        "records": given("records", ""),
        "agents": set(form.getlist("agents")) if form is not None and form.get("agents_listed") else None,
    }, status)


async def _compiled(request: Request) -> CompileResult:
    studio = request.app.state.studio
    return await asyncio.to_thread(compile_with, studio.project, studio.bundle.environment)


async def start_page(request: Request) -> Response:
    refused = _refused(request)
    if refused:
        return refused
    return _start_page(request, await _compiled(request))


async def start_endpoint(request: Request) -> Response:
    refused = _refused(request)
    if refused:
        return refused
    form = await request.form()
    result = await _compiled(request)
    if result.bundle is None or result.errors:
        return _start_page(request, result, form, f"项目有 {len(result.errors)} 个错误,不能开始模拟;请先在“文件”中改正。", 422)
    try:
        choice = read_choice(result.bundle, form)
    except Refused as error:
        return _start_page(request, result, form, str(error), 422)
    sim = simulator.Simulator(result.bundle, flow=choice.flow, dialed=choice.dialed, caller=choice.caller,
                              at=choice.at, records=choice.records, agents=choice.agents)
    sim.start()
    target = f"{choice.dialed}({sim.flow})" if choice.dialed else f"流程 {sim.flow}"
    session = sessions_of(request).add(Session(secrets.token_urlsafe(12), auth.current_user(request).name, sim, target))
    return RedirectResponse(f"/workspace/simulate/{session.id}", status_code=303)


def _session(request: Request) -> Session | None:
    return sessions_of(request).get(auth.current_user(request).name, request.path_params["id"])


def _own_call(request: Request, gone: Callable[[], Response]) -> tuple[Session | None, Response | None]:
    """The user's call named in the address, or the page to show instead: refused, or `gone()`."""
    refused = _refused(request)
    if refused:
        return None, refused
    session = _session(request)
    return (session, None) if session is not None else (None, gone())


def _gone(request: Request, partial: bool) -> Response:
    from studio.screens import message, page

    text = f"这通模拟来电已不存在:可能已超过 {IDLE_S // 60} 分钟没有操作,或您又开始了几通新的。请重新开始一通。"
    if partial:
        return page(request, "simulate_gone.html", {"message": text}, 404)
    return message(request, "模拟来电已结束", text, 404, "/workspace/simulate")


async def _panel(request: Request, session: Session, error: str | None = None, status: int = 200,
                 partial: bool = True) -> Response:
    from studio.screens import page

    sim = session.sim
    # Drawn off the event loop from a copy of the path, while the next key may already be pressed.
    drawn = await asyncio.to_thread(pictures, sim.bundle, sim.flow, sim.visited, sim.current)
    return page(request, "simulate_panel.html" if partial else "simulate_call.html", {
        "title": "模拟来电", "current": "workspace", "session": session, "sim": sim, "keypad": KEYPAD,
        "entries": [(n, entry, words(sim.bundle, entry)) for n, entry in enumerate(sim.entries)], "pictures": drawn, "facts": call_facts(sim, sim.started.tzinfo),
        "writes": writes(sim), "audio": audio_available(), "error": error,
        "ringing": sim.ringing_agent and agent_name(sim.bundle, sim.ringing_agent),
        "on_call": sim.agent_on_call and agent_name(sim.bundle, sim.agent_on_call),
    }, status)


async def call_page(request: Request) -> Response:
    session, instead = _own_call(request, lambda: _gone(request, partial=False))
    if instead:
        return instead
    return await _panel(request, session, partial=False)


async def act_endpoint(request: Request) -> Response:
    session, instead = _own_call(request, lambda: _gone(request, partial=True))
    if instead:
        return instead
    form = await request.form()
    try:
        session.sim.feed(line_of(form, session.sim))
    except Refused as error:
        return await _panel(request, session, str(error), 422)
    except simulator.SimulatorError as error:   # checked above; the simulator's own words otherwise
        return await _panel(request, session, f"不能执行:{error}", 422)
    return await _panel(request, session)


async def speech_endpoint(request: Request) -> Response:
    session, instead = _own_call(request, lambda: PlainTextResponse("这通模拟来电已不存在。", 404))
    if instead:
        return instead
    n = request.path_params["n"]
    entries = session.sim.entries
    if n >= len(entries) or entries[n].spoken is None:
        return PlainTextResponse(f"第 {n} 条不是语音提示。", 404)
    cache = Path(request.app.state.studio.project) / ".flowdesk" / "tts"
    try:
        wav = await asyncio.to_thread(tts.speak, entries[n].spoken, cache)
    except tts.TtsError as error:
        return PlainTextResponse(f"无法朗读:{error}", 503)
    return FileResponse(wav, media_type="audio/wav")


routes = [
    Route("/workspace/simulate", start_page),
    Route("/workspace/simulate/start", start_endpoint, methods=["POST"]),
    Route("/workspace/simulate/{id}", call_page),
    Route("/workspace/simulate/{id}/act", act_endpoint, methods=["POST"]),
    Route("/workspace/simulate/{id}/speech/{n:int}", speech_endpoint),
]
