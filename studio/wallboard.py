"""The wallboard: every queue at a glance, pushed live from the running call centre.

    /wallboard          team leads and supervisors only (403 for anyone else)
    /wallboard/events   Server-Sent Events: `board`, the whole board, at once when it changes

Per queue and in total: callers waiting now and since when (the page counts the longest wait up
by itself from that time, so it ticks without asking the server), callbacks waiting, agents by
state, and today's service level and abandoned calls.

Where the numbers come from:
- Now: the call centre in memory (`app.state.telephony`): the open queue visits of its calls, the
  ACD's callbacks in line and each agent's state.  A caller is waiting from entering the queue
  until an agent answers (ringing an agent included), as the KPIs count a wait.
- Today: runtime.kpis.queue_kpis over the event log's queue visits since local midnight, merged
  with the visits the centre has not written yet, so a call that ended a moment ago counts.

The board learns of changes as a watcher of the telephony's hub, which every edge (the simulated
one and Asterisk's) tells after each step of the centre.  A change (a call queues, is
answered or abandons; an agent changes state) wakes every open board; pushes are coalesced to
at most `PUSHES_PER_S` a second, and a board that came out the same is not sent again.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Iterable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from compiler import ir
from runtime.kpis import QueueKpis, interval_start, queue_kpis
from runtime.storage import QueueVisit
from runtime.times import as_utc
from studio import auth, render
from studio.supervisor import may_supervise

log = logging.getLogger("flowdesk.wallboard")

PUSHES_PER_S = 4
KEEP_ALIVE_S = 15.0
# The agent states the board counts, in its columns' order (logged-out agents are not on it).
AGENT_STATES = ("ready", "ringing", "on_call", "wrap_up", "not_ready")
STATE_TITLES = {"ready": "就绪", "ringing": "振铃", "on_call": "通话", "wrap_up": "话后", "not_ready": "未就绪"}


# ---------------------------------------------------------------------- what the board shows

@dataclass(frozen=True)
class Visit:
    """A queue visit as the KPIs read it, copied out of the centre's live (changing) rows."""
    call_id: str
    queue: str
    enqueued_at: dt.datetime
    outcome: str | None
    left_at: dt.datetime | None
    talk_ended_at: dt.datetime | None = None
    wrapup_ended_at: dt.datetime | None = None
    hold_ms: int = 0

    @classmethod
    def of(cls, row: QueueVisit) -> "Visit":
        return cls(row.call_id, row.queue, as_utc(row.enqueued_at), row.outcome, as_utc(row.left_at),
                   as_utc(row.talk_ended_at), as_utc(row.wrapup_ended_at), row.hold_ms or 0)

    @property
    def key(self) -> tuple:
        return (self.call_id, self.queue, self.enqueued_at)


@dataclass(frozen=True)
class LiveView:
    """The call centre now: what changes the board."""
    visits: tuple[Visit, ...]                # every visit in memory (current and not yet written)
    callbacks: tuple[tuple[str, int], ...]   # (queue, callbacks in line)
    agents: tuple[tuple[str, str, tuple[str, ...]], ...]  # (agent, state, queues served), logged in


def live_view(live) -> LiveView:
    """Read the centre on the event loop's thread, where it runs."""
    center = live.center
    rows = [r for r in center.rows if isinstance(r, QueueVisit)]
    rows += [call.visit for call in center.calls.values() if call.visit is not None]
    visits = {v.key: v for v in map(Visit.of, rows)}   # the call's own (latest) visit wins
    acd = center.acd
    callbacks = tuple((q, acd.queue_status(q).callbacks) for q in live.bundle.queues)
    agents = []
    for name in live.bundle.agents:
        state, _reason = acd.agent_state(name)
        if state in AGENT_STATES:
            agents.append((name, state, tuple(acd.serves(name))))
    return LiveView(tuple(sorted(visits.values(), key=lambda v: v.key)), callbacks, tuple(agents))


@dataclass(frozen=True)
class QueueLine:
    """One line of the board: a queue, or the total."""
    queue: str
    title: str
    waiting: int
    waiting_since: dt.datetime | None        # when the longest-waiting caller entered the queue
    callbacks: int
    agents: tuple[int, ...]                  # per AGENT_STATES
    offered: int
    answered: int
    answered_in_target: int
    abandoned: int
    counted: int                             # offered less short abandons: the rates' base
    target_percent: float | None
    target_s: float | None

    @property
    def service_level(self) -> float | None:
        return self.answered_in_target / self.counted if self.counted else None

    @property
    def below_target(self) -> bool:
        level = self.service_level
        return level is not None and self.target_percent is not None and level * 100 < self.target_percent


@dataclass(frozen=True)
class Board:
    at: dt.datetime = field(compare=False)   # the server's now, for the page's wait clocks
    queues: tuple[QueueLine, ...]
    total: QueueLine


def today_start(now: dt.datetime, tz) -> dt.datetime:
    return interval_start(now, "day", tz)


def merged_visits(view: LiveView, logged: Iterable[Visit], since: dt.datetime) -> list[Visit]:
    """Today's visits: the event log's, with the centre's newer copies in their place."""
    visits = {v.key: v for v in logged}
    visits.update((v.key, v) for v in view.visits if v.enqueued_at >= since)
    return list(visits.values())


def build_board(bundle: ir.Bundle, view: LiveView, today: list[Visit], now: dt.datetime, tz) -> Board:
    targets = {name: q.service_level.within_ms / 1000 for name, q in bundle.queues.items()}
    start = today_start(now, tz)
    kpis = {k.queue: k for k in queue_kpis(today, "day", tz, targets) if k.start == start}
    callbacks = dict(view.callbacks)
    lines = []
    for name, queue in bundle.queues.items():
        open_ = [v for v in view.visits if v.queue == name and v.outcome is None]
        agents = [state for _agent, state, serves in view.agents if name in serves]
        lines.append(_line(name, queue.title or name, open_, callbacks.get(name, 0), agents,
                           kpis.get(name), queue.service_level.percent, targets[name]))
    everyone = [state for _agent, state, serves in view.agents if serves]
    open_all = [v for v in view.visits if v.outcome is None and v.queue in bundle.queues]
    total = _line("", "合计", open_all, sum(callbacks.values()), everyone,
                  _summed([k for q, k in kpis.items() if q in bundle.queues]), None, None)
    return Board(now, tuple(lines), total)


def _line(queue, title, open_visits, callbacks, states, kpis: QueueKpis | None, percent, target_s) -> QueueLine:
    k = kpis or QueueKpis(queue=queue, start=dt.datetime.min)
    return QueueLine(queue, title, len(open_visits), min((v.enqueued_at for v in open_visits), default=None),
                     callbacks, tuple(states.count(s) for s in AGENT_STATES), k.offered, k.answered,
                     k.answered_in_target, k.abandoned, k.counted, percent, target_s)


def _summed(rows: list[QueueKpis]) -> QueueKpis:
    total = QueueKpis(queue="", start=dt.datetime.min)
    for k in rows:
        total.offered += k.offered
        total.answered += k.answered
        total.answered_in_target += k.answered_in_target
        total.abandoned += k.abandoned
        total.short_abandoned += k.short_abandoned
    return total


# ---------------------------------------------------------------------- keeping it current

class Wallboard:
    """The board of one running telephony, shared by every open wallboard page: recomputed once
    per change however many pages watch it."""

    def __init__(self, studio, live):
        self.studio, self.live = studio, live
        self.tz = render.zone(studio.bundle)
        self.version = 0
        self.listeners: set[asyncio.Event] = set()
        self._seen: LiveView | None = None
        self._made: tuple | None = None          # ((version, day), board, html)
        self._lock = asyncio.Lock()
        live.hub.watchers.append(self.stepped)  # told after each step of the centre

    def stepped(self) -> None:
        view = live_view(self.live)
        if view != self._seen:
            self._seen = view
            self.version += 1
            for listener in self.listeners:
                listener.set()

    async def board(self) -> tuple[Board, str]:
        """The board now and its HTML, made once per change (and per day)."""
        async with self._lock:
            now = self.live.clock()
            key = (self.version, today_start(now, self.tz))
            if self._made is None or self._made[0] != key:
                # The centre first, then the log: a visit written in between is in one or the other.
                view = live_view(self.live)
                since = today_start(now, self.tz)
                logged = await asyncio.to_thread(self._logged, since, now)
                board = build_board(self.studio.bundle, view, merged_visits(view, logged, since), now, self.tz)
                self._made = (key, board, self.render(board))
            return self._made[1], self._made[2]

    def _logged(self, since: dt.datetime, now: dt.datetime) -> list[Visit]:
        event_log = self.live.event_log
        if event_log is None:
            return []
        until = now + dt.timedelta(days=1)   # the centre's clock may run ahead of `now` by a step
        return [Visit.of(row) for row in event_log.queue_visits(since.astimezone(dt.timezone.utc),
                                                                until.astimezone(dt.timezone.utc))]

    def render(self, board: Board) -> str:
        return self.studio.templates.get_template("wallboard_board.html").render(
            board=board, states=AGENT_STATES, titles=STATE_TITLES, tz=self.tz,
            at_ms=_epoch_ms(board.at), epoch_ms=_epoch_ms, waited=waited)


def waited(span: dt.timedelta) -> str:
    """A wait as the page's clock shows it: m:ss, or h:mm:ss (wallboard.html counts on from here)."""
    seconds = max(0, int(span.total_seconds()))
    hours, minutes = seconds // 3600, seconds // 60 % 60
    return f"{hours}:{minutes:02d}:{seconds % 60:02d}" if hours else f"{minutes}:{seconds % 60:02d}"


def _epoch_ms(at: dt.datetime | None) -> int | None:
    return int(at.timestamp() * 1000) if at is not None else None


def wallboard(request: Request) -> Wallboard:
    """The app's wallboard, made on first use for the telephony running now."""
    state = request.app.state
    board = getattr(state, "wallboard", None)
    if board is None or board.live is not state.telephony:
        board = state.wallboard = Wallboard(state.studio, state.telephony)
    return board


# ---------------------------------------------------------------------- the page and the stream

def _refused(request: Request) -> Response:
    from studio.screens import message

    return message(request, "无权查看", "实时看板只对班组长和值班主管开放。", 403)


async def wallboard_page(request: Request) -> Response:
    from studio.screens import page

    if not may_supervise(auth.current_user(request)):
        return _refused(request)
    _board, html = await wallboard(request).board()
    return page(request, "wallboard.html", {"title": "实时看板", "current": "wallboard", "board": html})


async def events(request: Request) -> Response:
    if not may_supervise(auth.current_user(request)):
        return _refused(request)
    shared = wallboard(request)
    changed = asyncio.Event()
    shared.listeners.add(changed)

    async def stream():
        from studio.desktop import sse

        try:
            shown, html = await shared.board()
            yield sse("board", html)
            while True:
                try:
                    await asyncio.wait_for(changed.wait(), KEEP_ALIVE_S)
                except asyncio.TimeoutError:
                    pass   # nothing changed: the day may have turned, or the line needs a keep-alive
                changed.clear()
                board, html = await shared.board()
                if board == shown:
                    yield ": keep-alive\n\n"
                    continue
                shown = board
                yield sse("board", html)
                # Changes during this pause go out together in the next push.
                await asyncio.sleep(1 / PUSHES_PER_S)
        finally:
            shared.listeners.discard(changed)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


routes = [
    Route("/wallboard", wallboard_page),
    Route("/wallboard/events", events),
]
