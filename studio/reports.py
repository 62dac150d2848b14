"""Historical reports and staffing, read from the event log.

    /reports               queue and agent KPIs over a period, per interval: tables and charts
    /reports/queues.csv    the queue table as CSV (same query string as the page)
    /reports/agents.csv    the agent table as CSV
    /staffing              agents needed per interval by Erlang C, from a queue's call history
    /staffing.csv          that table as CSV

The figures are `flowdesk report`'s rows (runtime.kpis over the event log), so the page, its CSV
and the command agree to the digit.  A period is whole days on the project's wall clock: from the
first day's midnight to the midnight after the last.  Charts are drawn by studio.charts.

Who: reports are for team leads, supervisors and QA staff (QA judges service statistics such as
the abandon rate beside the calls it scores); staffing is planned by team leads and supervisors.
Anyone else gets 403.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compiler import ir
from flowdesk.report import AGENT_COLUMNS, QUEUE_COLUMNS, agent_rows, queue_rows, render_csv
from runtime import erlang
from runtime.kpis import INTERVALS
from runtime.storage import EventLog
from studio import auth, charts, render

REPORT_ROLES = ("team_lead", "supervisor", "qa")
STAFFING_ROLES = ("team_lead", "supervisor")
INTERVAL_NAMES = {"15min": "15 分钟", "hour": "小时", "day": "天"}
MAX_DAYS = {"15min": 7, "hour": 62, "day": 400}       # keeps a page to some thousand rows at most
PRESETS = {"today": ("今天", 0, 0), "yesterday": ("昨天", 1, 1), "last7": ("最近 7 天", 6, 0)}
STATES = [("ready", "就绪"), ("not_ready", "示忙"), ("ringing", "振铃"), ("on_call", "通话"), ("wrap_up", "话后整理")]
STAFFING_COLUMNS = ["queue", "interval", "offered", "calls_per_hour", "aht_s", "erlangs", "agents",
                    "service_level", "asa_s", "scheduled"]
# The share of paid time agents are not on the phones (breaks, meetings, training, absence): a
# common planning figure for inbound centres; the form can change it.
SHRINKAGE_PERCENT = 30


class BadInput(ValueError):
    """A choice on the form that cannot be reported on; the message says which and why."""


# ------------------------------------------------------------------ what was asked for

@dataclass(frozen=True)
class Period:
    """Whole days [first, last] on the wall clock of `tz`, read per `interval`."""
    first: dt.date
    last: dt.date
    interval: str
    tz: ZoneInfo

    @property
    def since(self) -> dt.datetime:
        return dt.datetime.combine(self.first, dt.time(), self.tz)

    @property
    def until(self) -> dt.datetime:
        return dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), self.tz)

    def until_now(self, now: dt.datetime) -> dt.datetime:
        """The end, but not past `now`: an agent's state today has lasted until now, not until midnight."""
        return max(self.since, min(self.until, now))


def read_date(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"{what}“{text}”不是有效日期,请写成 2026-11-23 这样的格式。") from None


def read_period(params, today: dt.date, tz: ZoneInfo, intervals=tuple(INTERVALS)) -> Period:
    """The period the form asks for: a preset (today, yesterday, last 7 days) or from/to dates."""
    interval = params.get("interval") or "hour"
    if interval not in intervals:
        raise BadInput(f"统计粒度“{interval}”无效,可选:{'、'.join(INTERVAL_NAMES[i] for i in intervals)}。")
    preset = params.get("preset")
    if preset:
        if preset not in PRESETS:
            raise BadInput(f"没有名为“{preset}”的快捷时段。")
        _name, back, end = PRESETS[preset]
        first, last = today - dt.timedelta(days=back), today - dt.timedelta(days=end)
    else:
        first = read_date(params.get("from") or today.isoformat(), "开始日期")
        last = read_date(params.get("to") or first.isoformat(), "结束日期")
    if last < first:
        raise BadInput(f"结束日期 {last} 早于开始日期 {first}。")
    if (last - first).days + 1 > MAX_DAYS[interval]:
        raise BadInput(f"按{INTERVAL_NAMES[interval]}统计最多查看 {MAX_DAYS[interval]} 天,"
                       f"请缩短时段或改用更粗的统计粒度。")
    return Period(first, last, interval, tz)


def read_choice(params, key: str, known, what: str) -> str | None:
    """A queue or agent name from the form; None for all of them."""
    name = params.get(key) or None
    if name is not None and name not in known:
        raise BadInput(f"没有名为“{name}”的{what}。")
    return name


def targets(bundle: ir.Bundle) -> dict[str, float]:
    """Each queue's service-level threshold in seconds, as `flowdesk report` reads them."""
    return {q.name: q.service_level.within_ms / 1000 for q in bundle.queues.values()}


def event_log(request: Request) -> EventLog:
    """The event log, read over the studio's own engine (it already made the log's tables)."""
    log = EventLog.__new__(EventLog)
    log.engine = request.app.state.studio.engine
    return log


# ------------------------------------------------------------------ how figures are shown

def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def queue_line(row: dict) -> dict:
    return {**row, "answer_rate": percent(row["answer_rate"]), "service_level": percent(row["service_level"]),
            "asa_s": seconds(row["asa_s"]), "aht_s": seconds(row["aht_s"]),
            "longest_wait_s": seconds(row["longest_wait_s"])}


def agent_line(row: dict, bundle: ir.Bundle) -> dict:
    agent = bundle.agents.get(row["agent"])
    return {**row, "shown": (agent.title if agent and agent.title else row["agent"]),
            "occupancy": percent(row["occupancy"]),
            **{f"{state}_s": seconds(row[f"{state}_s"]) for state, _ in STATES}}


def queue_title(bundle: ir.Bundle, name: str) -> str:
    queue = bundle.queues.get(name)
    return queue.title if queue and queue.title else name


def queue_charts(bundle: ir.Bundle, rows: list[dict], goal: float | None) -> dict:
    """Service level and offered calls per interval (a line per queue); answered against abandoned per queue."""
    if not rows:
        return {}
    xs = sorted({r["interval"] for r in rows})
    queues = sorted({r["queue"] for r in rows})
    by = {(r["queue"], r["interval"]): r for r in rows}

    def series(prefix: str, column: str, scale: float = 1.0) -> list[charts.Series]:
        return [charts.Series(f"{prefix}-{q}", queue_title(bundle, q),
                              [None if (r := by.get((q, x))) is None or r[column] is None else r[column] * scale
                               for x in xs]) for q in queues]

    offered = [charts.Series(s.key, s.label, [v or 0 for v in s.values]) for s in series("offered", "offered")]
    totals = {q: (sum(r["answered"] for r in rows if r["queue"] == q),
                  sum(r["abandoned"] for r in rows if r["queue"] == q)) for q in queues}
    return {
        "trend": charts.trend(xs, series("service_level", "service_level", 100.0), offered,
                              "服务水平", "呼入量", upper_target=goal),
        "bars": charts.bars([(q, queue_title(bundle, q)) for q in queues],
                            [charts.Series("answered", "接通", [totals[q][0] for q in queues]),
                             charts.Series("abandoned", "放弃", [totals[q][1] for q in queues])],
                            "各队列接通与放弃"),
    }


def agent_chart(rows: list[dict]) -> str | None:
    """Where the agents' time went over the period, by state."""
    slices = [(state, name, sum(r[f"{state}_s"] for r in rows)) for state, name in STATES]
    return charts.pie(slices, "坐席状态时长") if any(s[2] > 0 for s in slices) else None


# ------------------------------------------------------------------ /reports

def report_context(request: Request, params) -> dict:
    """Everything the report page shows; raises BadInput for a choice it cannot report on."""
    studio = request.app.state.studio
    bundle, tz = studio.bundle, render.zone(studio.bundle)
    period = read_period(params, studio.clock().astimezone(tz).date(), tz)
    queue = read_choice(params, "queue", bundle.queues, "队列")
    agent = read_choice(params, "agent", bundle.agents, "坐席")
    log, until = event_log(request), period.until_now(studio.clock())
    queues = queue_rows(log, period.since, until, queue, period.interval, tz, targets(bundle))
    agents = agent_rows(log, period.since, until, agent, period.interval, tz)
    goal = bundle.queues[queue].service_level.percent if queue else None
    return {"period": period, "queue_rows": [queue_line(r) for r in queues],
            "agent_rows": [agent_line(r, bundle) for r in agents],
            "charts": {**queue_charts(bundle, queues, goal), "pie": agent_chart(agents)}}


def form_values(request: Request, params, period: Period | None) -> dict:
    """The form as the user left it (or as the preset resolved it), and the choices it offers."""
    bundle = request.app.state.studio.bundle
    values = {k: params.get(k) or "" for k in ("from", "to", "interval", "queue", "agent", "percent", "within", "aht",
                                               "shrinkage")}
    if period is not None:
        values.update({"from": period.first.isoformat(), "to": period.last.isoformat(), "interval": period.interval})
    keep = {k: v for k, v in values.items() if v and k not in ("from", "to")}
    return {"form": values, "csv_query": urlencode({k: v for k, v in values.items() if v}),
            "presets": [(name, "?" + urlencode({**keep, "preset": key})) for key, (name, _b, _e) in PRESETS.items()],
            "intervals": INTERVAL_NAMES,
            "queues": [(q.name, q.title or q.name) for q in bundle.queues.values()],
            "agents": [(a.name, a.title or a.name) for a in bundle.agents.values() if a.queues]}


async def reports_page(request: Request) -> Response:
    refused = refuse(request, REPORT_ROLES, "历史报表只对班组长、值班主管和质检员开放。")
    if refused:
        return refused
    params = request.query_params
    try:
        shown = await run_in_threadpool(report_context, request, params)
    except BadInput as bad:
        return _page(request, "reports.html", {"error": str(bad), **form_values(request, params, None)}, 400)
    return _page(request, "reports.html", {**shown, **form_values(request, params, shown["period"])})


async def queues_csv(request: Request) -> Response:
    return await _csv(request, "queues", lambda log, p, bundle, params, now: queue_rows(
        log, p.since, p.until_now(now), read_choice(params, "queue", bundle.queues, "队列"), p.interval, p.tz,
        targets(bundle)), QUEUE_COLUMNS)


async def agents_csv(request: Request) -> Response:
    return await _csv(request, "agents", lambda log, p, bundle, params, now: agent_rows(
        log, p.since, p.until_now(now), read_choice(params, "agent", bundle.agents, "坐席"), p.interval, p.tz),
        AGENT_COLUMNS)


async def _csv(request: Request, name: str, rows_of, columns: list[str]) -> Response:
    from studio.screens import message

    refused = refuse(request, REPORT_ROLES, "历史报表只对班组长、值班主管和质检员开放。")
    if refused:
        return refused
    studio, params = request.app.state.studio, request.query_params
    tz = render.zone(studio.bundle)
    try:
        period = read_period(params, studio.clock().astimezone(tz).date(), tz)
        rows = await run_in_threadpool(rows_of, event_log(request), period, studio.bundle, params, studio.clock())
    except BadInput as bad:
        return message(request, "无法导出", str(bad), 400, "/reports")
    return csv_response(render_csv(rows, columns), f"{name}-{period.first}-{period.last}.csv")


def csv_response(text: str, filename: str) -> Response:
    # The same text as `flowdesk report --csv`: names are plain ASCII, so no byte-order mark.
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# ------------------------------------------------------------------ /staffing

@dataclass(frozen=True)
class Goal:
    """The service level to staff for, and the handle time to assume (None: the measured one)."""
    level: float          # 0.8
    within_s: float       # 20
    aht_s: float | None
    shrinkage: float = SHRINKAGE_PERCENT / 100     # 0.3


def read_goal(params, queue: ir.Queue) -> Goal:
    level = _number(params.get("percent"), "服务水平目标", queue.service_level.percent, 1, 99.9)
    within = _number(params.get("within"), "目标应答时间(秒)", queue.service_level.within_ms / 1000, 0, 3600)
    aht = params.get("aht") or None
    shrinkage = _number(params.get("shrinkage"), "折损率 %", SHRINKAGE_PERCENT, 0, 90)
    return Goal(level / 100, within, _number(aht, "平均处理时长(秒)", 0, 1, 4 * 3600) if aht else None,
                shrinkage / 100)


def _number(text: str | None, what: str, default: float, low: float, high: float) -> float:
    if not text:
        return float(default)
    try:
        value = float(text)
    except ValueError:
        raise BadInput(f"{what}“{text}”不是数字。") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise BadInput(f"{what}应在 {low:g} 到 {high:g} 之间(现为 {text})。")
    return value


def staffing_rows(history: list[dict], interval: str, goal: Goal) -> list[dict]:
    """Per interval of the history: the calls per hour, the handle time, and the agents Erlang C asks for.

    The handle time is the one given on the form, else the interval's own, else the period's
    (answered-weighted) when nobody finished a call in that interval."""
    hours = INTERVALS[interval].total_seconds() / 3600
    handled = [(r["aht_s"], r["answered"]) for r in history if r["aht_s"] is not None and r["answered"]]
    period_aht = (sum(a * n for a, n in handled) / sum(n for _, n in handled)) if handled else None
    rows = []
    for r in history:
        aht = goal.aht_s or r["aht_s"] or period_aht
        per_hour = r["offered"] / hours
        row = {"queue": r["queue"], "interval": r["interval"], "offered": r["offered"], "calls_per_hour": per_hour,
               "aht_s": aht, "aht_from": "given" if goal.aht_s else "own" if r["aht_s"] else "period",
               "erlangs": None, "agents": None, "service_level": None, "asa_s": None, "scheduled": None}
        if aht:
            agents = erlang.agents_needed(per_hour, aht, goal.level, goal.within_s, max_agents=20_000)
            row.update(erlangs=erlang.traffic_erlangs(per_hour, aht), agents=agents,
                       service_level=erlang.service_level(agents, per_hour, aht, goal.within_s) if agents else None,
                       asa_s=erlang.average_speed_of_answer(agents, per_hour, aht) if agents else None,
                       scheduled=scheduled(agents, goal.shrinkage))
        rows.append(row)
    return rows


def scheduled(agents: int | None, shrinkage: float) -> int | None:
    """Agents to put on the schedule so that `agents` are on the phones after shrinkage."""
    return None if agents is None else math.ceil(round(agents / (1 - shrinkage), 9))


def staffing_context(request: Request, params) -> dict:
    studio = request.app.state.studio
    bundle, tz = studio.bundle, render.zone(studio.bundle)
    if not bundle.queues:
        raise BadInput("项目中没有队列。")
    period = read_period(params, studio.clock().astimezone(tz).date(), tz, intervals=("15min", "hour"))
    name = read_choice(params, "queue", bundle.queues, "队列") or next(iter(bundle.queues))
    goal = read_goal(params, bundle.queues[name])
    history = queue_rows(event_log(request), period.since, period.until, name, period.interval, tz, targets(bundle))
    rows = staffing_rows(history, period.interval, goal)
    chart = None
    if rows:
        xs = [r["interval"] for r in rows]
        chart = charts.trend(xs, [charts.Series("agents", "所需坐席", [r["agents"] for r in rows])],
                             [charts.Series("offered", "呼入量", [r["offered"] for r in rows])],
                             "所需坐席数(Erlang C)", "呼入量", percent=False)
    return {"period": period, "queue": name, "goal": goal, "rows": rows, "chart": chart,
            "peak": max((r["agents"] or 0 for r in rows), default=0),
            "peak_scheduled": max((r["scheduled"] or 0 for r in rows), default=0)}


async def staffing_page(request: Request) -> Response:
    refused = refuse(request, STAFFING_ROLES, "排班测算只对班组长和值班主管开放。")
    if refused:
        return refused
    params = request.query_params
    try:
        shown = await run_in_threadpool(staffing_context, request, params)
    except BadInput as bad:
        return _page(request, "reports_staffing.html", {"error": str(bad), **form_values(request, params, None)}, 400)
    values = form_values(request, params, shown["period"])
    goal = shown["goal"]
    values["form"].update(queue=shown["queue"], percent=f"{goal.level * 100:g}", within=f"{goal.within_s:g}",
                          shrinkage=f"{goal.shrinkage * 100:g}")
    return _page(request, "reports_staffing.html", {**shown, **values})


async def staffing_csv(request: Request) -> Response:
    from studio.screens import message

    refused = refuse(request, STAFFING_ROLES, "排班测算只对班组长和值班主管开放。")
    if refused:
        return refused
    try:
        shown = await run_in_threadpool(staffing_context, request, request.query_params)
    except BadInput as bad:
        return message(request, "无法导出", str(bad), 400, "/staffing")
    period = shown["period"]
    return csv_response(render_csv(shown["rows"], STAFFING_COLUMNS),
                        f"staffing-{shown['queue']}-{period.first}-{period.last}.csv")


# ------------------------------------------------------------------ shared

def refuse(request: Request, roles: tuple[str, ...], why: str) -> Response | None:
    from studio.screens import message

    user = auth.current_user(request)
    return None if user is not None and user.has_role(*roles) else message(request, "无权查看", why, 403)


def _page(request: Request, template: str, context: dict, status: int = 200) -> Response:
    from studio.screens import page

    title = "排班测算" if template == "reports_staffing.html" else "历史报表"
    key = "staffing" if template == "reports_staffing.html" else "reports"
    return page(request, template, {"title": title, "current": key, "error": None, **context}, status)


routes = [
    Route("/reports", reports_page),
    Route("/reports/queues.csv", queues_csv),
    Route("/reports/agents.csv", agents_csv),
    Route("/staffing", staffing_page),
    Route("/staffing.csv", staffing_csv),
]
