"""Quality assurance: calls sampled, listened to and scored on the project's evaluation forms.

    /qa                          answered calls by filter, or a random sample of N per agent (QA staff,
                                 team leads, supervisors)
    /qa/call/{id}                the call's facts, its recording, the scoring form; POST saves the review
    /qa/call/{id}/form           the form's parts for the chosen call type (htmx swaps them in)
    /qa/call/{id}/recording      the recording, with Range requests (for those roles and the call's agent)
    /qa/mine                     an agent's own reviewed calls: scores per part and the notes
    /qa/trends                   each agent's average score over time and per criterion (team leads, supervisors)

Scoring and storage are runtime.qa's; the server checks every save against the form whatever the
page showed.  Recordings are served only from the recordings folder (the ARI settings' folder, else
FLOWDESK_RECORDINGS, else `.flowdesk/recordings` in the project), never from another path a call lists.
"""
from __future__ import annotations

import datetime as dt
import mimetypes
import os
import secrets
from pathlib import Path
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from compiler import ir
from runtime import qa
from runtime.crm.users import User
from studio import auth, charts, render
from studio.reports import BadInput, read_date, read_period

QA_ROLES = ("qa", "team_lead", "supervisor")
TREND_ROLES = ("team_lead", "supervisor")
SHOWN_CALLS = 300                 # the list shows this many calls at most; narrow the filter for more
MAX_PER_AGENT = 50
END_REASONS = {"hangup": "挂机", "caller_hangup": "客户挂机", "agent_hangup": "坐席挂机", "transferred": "转接",
               "voicemail": "留言", "overflow": "溢出", "error": "出错"}
TREND_INTERVALS = {"day": "天", "week": "周", "month": "月"}
TREND_DAYS = {"day": 62, "week": 400, "month": 400}


def workplaces(user: User | None) -> list[tuple[str, str, str]]:
    """(address, title, key) of the QA pages `user` works on."""
    if user is None:
        return []
    out = []
    if user.has_role(*QA_ROLES):
        out.append(("/qa", "质检", "qa"))
    if user.has_role("agent"):
        out.append(("/qa/mine", "我的质检", "qa-mine"))
    return out


# ------------------------------------------------------------------ shared

def studio_of(request: Request):
    studio = request.app.state.studio
    if not getattr(studio, "qa_tables_made", False):
        qa.create_tables(studio.engine)     # the studio's start makes the CRM's tables; these on first use
        studio.qa_tables_made = True
    return studio


async def in_database(request: Request, work, *args):
    """`work(connection, *args)` in one transaction, off the event loop."""
    studio = studio_of(request)

    def run():
        with studio.engine.begin() as connection:
            return work(connection, *args)
    return await run_in_threadpool(run)


def page(request: Request, template: str, context: dict, status: int = 200) -> Response:
    from studio.screens import page as studio_page

    bundle = request.app.state.studio.bundle
    return studio_page(request, template, {"tz": render.zone(bundle), "agent_name": lambda n: agent_name(bundle, n),
                                           "queue_name": lambda n: queue_name(bundle, n), "error": None,
                                           "clock": clock, "end_reasons": END_REASONS, **context}, status)


def refused_or_formless(request: Request, roles: tuple[str, ...], why: str) -> Response | None:
    """The page to show instead: 403 for a user without `roles`, or a project without an evaluation form."""
    from studio.reports import refuse

    refused = refuse(request, roles, why)
    if refused:
        return refused
    return None if studio_of(request).bundle.evaluations else no_form(request)


def no_form(request: Request) -> Response:
    from studio.screens import message

    return message(request, "还没有质检表",
                   "项目中没有定义质检表(evaluation),所以还不能给通话评分。请在 schemas/ 下写一个 evaluation,"
                   "列出通话类型、各部分和评分项及分值(写法见示例项目的 schemas/qa.schema),重新启动工作室后即可质检。", 200)


def evaluation_of(bundle: ir.Bundle, name: str | None) -> ir.Evaluation:
    if name and name in bundle.evaluations:
        return bundle.evaluations[name]
    if name:
        raise BadInput(f"没有名为“{name}”的质检表。")
    return next(iter(bundle.evaluations.values()))


def agent_name(bundle: ir.Bundle, name: str | None) -> str:
    agent = bundle.agents.get(name or "")
    return (agent.title or agent.name) if agent else (name or "")


def queue_name(bundle: ir.Bundle, name: str | None) -> str:
    queue = bundle.queues.get(name or "")
    return (queue.title or queue.name) if queue else (name or "")


def clock(seconds: float | None) -> str:
    """Talk time as 分:秒."""
    if seconds is None:
        return "—"
    whole = int(round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


# ------------------------------------------------------------------ /qa: choosing calls

def read_filter(bundle: ir.Bundle, params, today: dt.date, tz) -> tuple[qa.CallFilter, dict]:
    """The call filter the form asks for, and the form as it reads back (the period as resolved)."""
    period_params = {"preset": params.get("preset"), "from": params.get("from"), "to": params.get("to"),
                     "interval": "day"}
    if not period_params["from"] and not period_params["preset"]:
        period_params["preset"] = "last7"
    period = read_period(period_params, today, tz, intervals=("day",))
    choices = {"queue": (bundle.queues, "队列"), "agent": (bundle.agents, "坐席"), "outcome": (END_REASONS, "结束方式")}
    chosen = {}
    for key, (known, what) in choices.items():
        chosen[key] = params.get(key) or None
        if chosen[key] is not None and chosen[key] not in known:
            raise BadInput(f"没有名为“{chosen[key]}”的{what}。")
    min_talk = read_number(params.get("min_talk"), "最短通话时长(秒)", 0, 24 * 3600)
    wanted = qa.CallFilter(since=period.since, until=period.until, min_talk_s=min_talk,
                           reviewed=yes_no(params.get("reviewed")), recorded=yes_no(params.get("recorded")), **chosen)
    form = {k: params.get(k) or "" for k in ("queue", "agent", "outcome", "min_talk", "reviewed", "recorded",
                                             "per_agent", "evaluation")}
    form.update({"from": period.first.isoformat(), "to": period.last.isoformat()})
    return wanted, form


def yes_no(text: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(text or "")


def read_number(text: str | None, what: str, low: float, high: float) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadInput(f"{what}“{text}”不是数字。") from None
    if not low <= value <= high:
        raise BadInput(f"{what}应在 {low:g} 到 {high:g} 之间(现为 {text})。")
    return value


def read_per_agent(text: str | None) -> int:
    try:
        value = int(text or "")
    except ValueError:
        raise BadInput(f"每位坐席抽取的通数“{text or ''}”不是整数。") from None
    if not 1 <= value <= MAX_PER_AGENT:
        raise BadInput(f"每位坐席抽取的通数应在 1 到 {MAX_PER_AGENT} 之间(现为 {value})。")
    return value


def chosen_calls(connection, wanted: qa.CallFilter, per_agent: int | None, seed: str | None) -> dict:
    calls = qa.answered_calls(connection, wanted)
    if per_agent:
        calls = qa.sample_per_agent(calls, per_agent, seed)
    found = len(calls)
    calls = calls[-SHOWN_CALLS:][::-1] if not per_agent else calls[:SHOWN_CALLS]
    reviews = qa.reviews_of_calls(connection, [c.call_id for c in calls])
    return {"calls": calls, "found": found, "reviews": reviews}


async def qa_index(request: Request) -> Response:
    stop = refused_or_formless(request, QA_ROLES, "质检只对质检员、班组长和值班主管开放。")
    if stop:
        return stop
    studio, params = studio_of(request), request.query_params
    bundle = studio.bundle
    tz = render.zone(bundle)
    sampling = params.get("action") == "sample"
    if sampling and not params.get("seed"):
        # A sample gets its seed in the address, so going back to it (or sharing it) shows the same calls.
        query = {**dict(params), "seed": str(secrets.randbelow(10 ** 6))}
        return RedirectResponse(f"/qa?{urlencode(query)}", status_code=303)
    choices = list_choices(bundle)
    try:
        wanted, form = read_filter(bundle, params, studio.clock().astimezone(tz).date(), tz)
        per_agent = read_per_agent(params.get("per_agent")) if sampling else None
    except BadInput as bad:
        form = {k: params.get(k) or "" for k in ("from", "to", "queue", "agent", "outcome", "min_talk", "reviewed",
                                                 "recorded", "per_agent")}
        return page(request, "qa.html", {"title": "质检", "current": "qa", "error": str(bad), "form": form,
                                         **choices}, 400)
    shown = await in_database(request, chosen_calls, wanted, per_agent, params.get("seed"))
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return page(request, "qa.html", {
        "title": "质检", "current": "qa", "form": form, "sampling": sampling, "per_agent": per_agent,
        "seed": params.get("seed"), "back": here, "may_trend": auth.current_user(request).has_role(*TREND_ROLES),
        "shown_limit": SHOWN_CALLS, **shown, **choices})


def list_choices(bundle: ir.Bundle) -> dict:
    return {"queues": [(q.name, q.title or q.name) for q in bundle.queues.values()],
            "agents": [(a.name, a.title or a.name) for a in bundle.agents.values() if a.queues]}


# ------------------------------------------------------------------ the recording

def recordings_folder(request: Request) -> Path:
    """Where the call recordings are kept: as `flowdesk serve` and the studio's ARI telephony keep them."""
    settings = getattr(request.app.state, "ari", None)
    if getattr(settings, "recordings", None):
        return Path(settings.recordings)
    given = os.environ.get("FLOWDESK_RECORDINGS")
    return Path(given) if given else request.app.state.studio.project / ".flowdesk" / "recordings"


class RecordingRefused(Exception):
    """The call lists a recording the studio will not serve; the message says why.  `outside`: the
    path lies outside the recordings folder (refused), rather than the file being gone."""

    def __init__(self, message: str, outside: bool):
        super().__init__(message)
        self.outside = outside


def recording_file(folder: Path, project: Path, stored: str | None) -> Path | None:
    """The recording's file inside `folder`; None when the call has none.  Raises RecordingRefused
    when the listed path lies outside the folder (through `..` or a link) or the file is gone.
    A relative path is read from the project folder, as `flowdesk serve` runs there, or from the folder."""
    if not stored:
        return None
    inside = folder.resolve()
    listed = Path(stored)
    candidates = [listed] if listed.is_absolute() else [project / listed, folder / listed]
    for candidate in candidates:
        path = candidate.resolve()
        if path.is_relative_to(inside):
            if not path.is_file():
                raise RecordingRefused(f"录音文件 {path.name} 不在录音目录中,可能已被清理。", outside=False)
            return path
    raise RecordingRefused("这通电话登记的录音路径在录音目录之外,出于安全不予播放。", outside=True)


def may_listen(user: User | None, call: qa.AnsweredCall) -> bool:
    return user is not None and (user.has_role(*QA_ROLES) or user.name == call.agent)


async def recording(request: Request) -> Response:
    from studio.screens import message

    call_id = request.path_params["call_id"]
    call = await in_database(request, qa.answered_call, call_id)
    user = auth.current_user(request)
    if call is None or not may_listen(user, call):
        # The same answer for a call that is not there and one not yours: ids are not to be probed.
        return message(request, "无法播放", "找不到这通电话,或您无权收听它的录音。", 404)
    try:
        path = recording_file(recordings_folder(request), request.app.state.studio.project, call.recording)
    except RecordingRefused as refused:
        return message(request, "无法播放", str(refused), 403 if refused.outside else 404)
    if path is None:
        return message(request, "无法播放", "这通电话没有录音。", 404)
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=kind, headers={"Cache-Control": "private, max-age=3600"})


# ------------------------------------------------------------------ /qa/call/{id}: scoring

def parts_view(evaluation: ir.Evaluation, call_type: str | None, values: dict, errors: dict) -> list[dict]:
    """The form's parts as shown: those not for the chosen type are left out (all shown before a type is chosen)."""
    shown = []
    for part in evaluation.parts:
        if call_type and call_type in part.not_for:
            continue
        shown.append({"part": part, "title": part.title or part.name,
                      "not_for": "、".join(qa.call_type_label(evaluation, t) for t in part.not_for),
                      "points": sum(i.points for i in part.items),
                      "items": [{"item": i, "key": qa.item_key(part, i), "title": i.title or i.name,
                                 "value": values.get(qa.item_key(part, i), ""),
                                 "error": errors.get(qa.item_key(part, i))} for i in part.items]})
    return shown


def typed_scores(params) -> dict[str, str]:
    return {key[len("score:"):]: str(value) for key, value in params.multi_items() if key.startswith("score:")}


def scoring_context(evaluation: ir.Evaluation, call_type: str | None, values: dict, errors: dict) -> dict:
    known = call_type in {c.name for c in evaluation.call_types}
    parts = parts_view(evaluation, call_type if known else None, values, errors)
    return {"evaluation": evaluation, "call_type": call_type or "", "parts": parts, "errors": errors,
            "maximum": sum(p["points"] for p in parts) if known else None}


def call_view(request: Request, call: qa.AnsweredCall) -> dict:
    """The call's facts and whether its recording can be played."""
    try:
        path = recording_file(recordings_folder(request), request.app.state.studio.project, call.recording)
        problem = None if path else "这通电话没有录音,仍可根据通话记录评分。"
    except RecordingRefused as refused:
        path, problem = None, str(refused)
    return {"call": call, "playable": path is not None, "recording_problem": problem}


async def load_call(request: Request) -> tuple[qa.AnsweredCall | None, Response | None]:
    from studio.screens import message

    stop = refused_or_formless(request, QA_ROLES, "给通话评分只对质检员、班组长和值班主管开放。")
    if stop:
        return None, stop
    call = await in_database(request, qa.answered_call, request.path_params["call_id"])
    if call is None:
        return None, message(request, "找不到通话", f"没有编号为 {request.path_params['call_id']} 且由坐席接听的通话。",
                             404, "/qa")
    return call, None


async def call_page(request: Request) -> Response:
    call, refused = await load_call(request)
    if refused:
        return refused
    bundle, params = request.app.state.studio.bundle, request.query_params
    try:
        evaluation = evaluation_of(bundle, params.get("evaluation"))
    except BadInput as bad:
        from studio.screens import message
        return message(request, "找不到质检表", str(bad), 404, "/qa")
    review = await in_database(request, qa.review_of, call.call_id, evaluation.name)
    values = {qa.item_key(s.part, s.item): s.points for s in review.scores if not s.skipped} if review else {}
    call_type = params.get("call_type") or (review.call_type if review else "")
    return scoring_page(request, call, evaluation, review, call_type, values, {}, review.note if review else "",
                        saved=params.get("saved") == "1")


def scoring_page(request: Request, call, evaluation, review, call_type, values, errors, note, *, saved=False,
                 status: int = 200) -> Response:
    bundle = request.app.state.studio.bundle
    back = auth.safe_next(request.query_params.get("back") or "/qa")
    return page(request, "qa_call.html", {
        "title": f"通话质检 · {call.call_id}", "current": "qa", **call_view(request, call), "review": review,
        "note": note, "saved": saved, "back": back, "evaluations": list(bundle.evaluations.values()),
        "own_call": auth.current_user(request).name == call.agent,
        **scoring_context(evaluation, call_type, values, errors)}, status)


async def scoring_form(request: Request) -> Response:
    """The parts for the call type just chosen, keeping the scores already typed."""
    call, refused = await load_call(request)
    if refused:
        return refused
    params = request.query_params
    try:
        evaluation = evaluation_of(request.app.state.studio.bundle, params.get("evaluation"))
    except BadInput as bad:
        from studio.screens import message
        return message(request, "找不到质检表", str(bad), 404, "/qa")
    return page(request, "qa_scoring.html", scoring_context(evaluation, params.get("call_type"),
                                                            typed_scores(params), {}))


async def save_scores(request: Request) -> Response:
    call, refused = await load_call(request)
    if refused:
        return refused
    studio, user = request.app.state.studio, auth.current_user(request)
    form = await request.form()
    call_type, note = str(form.get("call_type") or ""), str(form.get("note") or "")
    values = typed_scores(form)
    try:
        evaluation = evaluation_of(studio.bundle, str(form.get("evaluation") or "") or None)
    except BadInput as bad:
        from studio.screens import message
        return message(request, "找不到质检表", str(bad), 400, "/qa")
    errors = {}
    if user.name == call.agent:
        errors["call_type"] = "不能给自己接听的通话评分,请交由其他质检员或班组长评分。"
    else:
        try:
            scored = qa.score(evaluation, call_type, values)
        except qa.ScoreErrors as wrong:
            errors = wrong.errors
    if errors:
        review = await in_database(request, qa.review_of, call.call_id, evaluation.name)
        return scoring_page(request, call, evaluation, review, call_type, values, errors, note, status=400)
    await in_database(request, qa.save_review, evaluation, call.call_id, call.agent, call.started_at, user.name,
                      scored, note, studio.clock())
    query = urlencode({"evaluation": evaluation.name, "saved": "1", "back": form.get("back") or "/qa"})
    return RedirectResponse(f"/qa/call/{call.call_id}?{query}", status_code=303)


async def call_endpoint(request: Request) -> Response:
    return await (save_scores(request) if request.method == "POST" else call_page(request))


# ------------------------------------------------------------------ /qa/mine

def my_reviews(connection, agent: str) -> list[tuple[qa.Review, qa.AnsweredCall | None]]:
    return [(review, qa.answered_call(connection, review.call_id)) for review in qa.reviews_of_agent(connection, agent)]


async def mine(request: Request) -> Response:
    studio, user = studio_of(request), auth.current_user(request)
    if not studio.bundle.evaluations:
        return no_form(request)
    found = await in_database(request, my_reviews, user.name)
    folder = recordings_folder(request)
    forms = []
    for evaluation in studio.bundle.evaluations.values():
        rows = []
        for review, call in found:
            if review.evaluation != evaluation.name:
                continue
            try:
                playable = call is not None and recording_file(folder, studio.project, call.recording) is not None
            except RecordingRefused:
                playable = False
            rows.append({"review": review, "call": call, "parts": review.part_totals(), "playable": playable,
                         "call_type": qa.call_type_label(evaluation, review.call_type)})
        if rows:
            forms.append({"evaluation": evaluation, "rows": rows,
                          "average": sum(r["review"].percent or 0 for r in rows) / len(rows)})
    return page(request, "qa_mine.html", {"title": "我的质检", "current": "qa-mine", "forms": forms,
                                          "percent": percent})


# ------------------------------------------------------------------ /qa/trends

def read_trend_period(params, today: dt.date, tz):
    interval = params.get("interval") or "week"
    if interval not in TREND_INTERVALS:
        raise BadInput(f"统计粒度“{interval}”无效,可选:{'、'.join(TREND_INTERVALS.values())}。")
    last = read_date(params.get("to") or today.isoformat(), "结束日期")
    first = read_date(params.get("from") or (last - dt.timedelta(weeks=8) + dt.timedelta(days=1)).isoformat(),
                      "开始日期")
    if last < first:
        raise BadInput(f"结束日期 {last} 早于开始日期 {first}。")
    if (last - first).days + 1 > TREND_DAYS[interval]:
        raise BadInput(f"按{TREND_INTERVALS[interval]}统计最多查看 {TREND_DAYS[interval]} 天,请缩短时段或改用更粗的统计粒度。")
    since = dt.datetime.combine(first, dt.time(), tz)
    return first, last, interval, since, dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tz)


def trend_figures(connection, evaluation: str, since, until, interval, tz, agent):
    return (qa.agent_trend(connection, evaluation, since, until, interval, tz, agent),
            qa.criterion_averages(connection, evaluation, since, until, agent))


def trend_view(bundle: ir.Bundle, evaluation: ir.Evaluation, trend: list[dict], criteria: list[dict]) -> dict:
    """The tables and charts of /qa/trends from runtime.qa's rows."""
    starts = sorted({r["start"] for r in trend})
    agents = sorted({r["agent"] for r in trend} | {r["agent"] for r in criteria})
    by = {(r["agent"], r["start"]): r for r in trend}
    xs = [s.isoformat() for s in starts]
    figures = {}
    if trend:
        figures["trend"] = charts.trend(
            xs, [charts.Series(f"score-{a}", agent_name(bundle, a),
                               [by[(a, s)]["percent"] * 100 if (a, s) in by else None for s in starts]) for a in agents],
            [charts.Series(f"reviews-{a}", agent_name(bundle, a), [by[(a, s)]["reviews"] if (a, s) in by else 0
                                                                   for s in starts]) for a in agents],
            "平均得分率", "质检通数")
    items = {(r["agent"], r["part"], r["item"]): r for r in criteria}
    parts = qa.part_averages(criteria)
    rows = []
    for part in evaluation.parts:
        rows.append({"kind": "part", "key": part.name, "title": part.title or part.name,
                     "cells": [parts.get((a, part.name)) for a in agents]})
        for item in part.items:
            rows.append({"kind": "item", "key": qa.item_key(part, item), "title": item.title or item.name,
                         "cells": [items[(a, part.name, item.name)]["percent"] if (a, part.name, item.name) in items
                                   else None for a in agents]})
    if criteria:
        figures["heat"] = charts.heatmap(
            [(r["key"], r["title"] if r["kind"] == "item" else f"【{r['title']}】") for r in rows],
            [(a, agent_name(bundle, a)) for a in agents],
            [[None if v is None else v * 100 for v in r["cells"]] for r in rows], "各部分及评分项得分率(%)")
    return {"starts": starts, "scored_agents": agents, "by": by, "criteria_rows": rows, "charts": figures}


async def trends(request: Request) -> Response:
    stop = refused_or_formless(request, TREND_ROLES, "质检趋势只对班组长和值班主管开放。")
    if stop:
        return stop
    studio, params = studio_of(request), request.query_params
    bundle = studio.bundle
    tz = render.zone(bundle)
    form = {k: params.get(k) or "" for k in ("from", "to", "interval", "agent", "evaluation")}
    context = {"title": "质检趋势", "current": "qa", "form": form, "intervals": TREND_INTERVALS,
               "evaluations": list(bundle.evaluations.values()), "percent": percent, **list_choices(bundle)}
    try:
        evaluation = evaluation_of(bundle, params.get("evaluation"))
        first, last, interval, since, until = read_trend_period(params, studio.clock().astimezone(tz).date(), tz)
        if form["agent"] and form["agent"] not in bundle.agents:
            raise BadInput(f"没有名为“{form['agent']}”的坐席。")
    except BadInput as bad:
        return page(request, "qa_trends.html", {**context, "error": str(bad)}, 400)
    trend, criteria = await in_database(request, trend_figures, evaluation.name, since, until, interval, tz,
                                        form["agent"] or None)
    form.update({"from": first.isoformat(), "to": last.isoformat(), "interval": interval,
                 "evaluation": evaluation.name})
    return page(request, "qa_trends.html", {**context, "evaluation": evaluation, "interval": interval,
                                            **trend_view(bundle, evaluation, trend, criteria)})


routes = [
    Route("/qa", qa_index),
    Route("/qa/mine", mine),
    Route("/qa/trends", trends),
    Route("/qa/call/{call_id}", call_endpoint, methods=["GET", "POST"]),
    Route("/qa/call/{call_id}/form", scoring_form),
    Route("/qa/call/{call_id}/recording", recording),
]
