"""Quality assurance: scoring on the example project's form (schemas/qa.schema), reviews kept in the
database, answered calls chosen by filter and by random sample, and the trends read from the scores.
Storage on SQLite and PostgreSQL alike."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from compiler import compile_project
from runtime import qa
from runtime.storage import Call, EventLog, QueueVisit
from tests.conftest import postgres_schema

REPO = Path(__file__).resolve().parent.parent
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def form():
    result = compile_project([REPO / "flows", REPO / "schemas"])
    return result.bundle.evaluations["inbound"]


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


def full_marks(form, call_type: str, **changes) -> dict[str, object]:
    """Every applicable item at its full points, but for `changes` ("part__item": points)."""
    given = {qa.item_key(p, i): i.points for p in qa.applicable_parts(form, call_type) for i in p.items}
    given.update({key.replace("__", "."): value for key, value in changes.items()})
    return given


# ------------------------------------------------------------------ scoring

def test_a_complaint_skips_basic_skills_and_an_inquiry_skips_complaint_skills(form):
    assert [p.name for p in qa.applicable_parts(form, "complaint")] == [
        "general_skills", "attitude", "complaint_skills", "product_knowledge"]
    assert [p.name for p in qa.applicable_parts(form, "inquiry")] == [
        "general_skills", "attitude", "basic_skills", "product_knowledge"]
    assert len(qa.applicable_parts(form, "business")) == 5


def test_the_total_and_maximum_count_only_the_applicable_items(form):
    scored = qa.score(form, "complaint", full_marks(form, "complaint", attitude__tone=3, complaint_skills__solution=6))
    assert (scored.total, scored.maximum) == (100 - 2 - 4, 100)
    skipped = [s.item for s in scored.items if s.skipped]
    assert skipped == ["needs", "accuracy", "records"]
    assert qa.score(form, "inquiry", full_marks(form, "inquiry")).maximum == 95
    assert qa.score(form, "business", full_marks(form, "business")).maximum == 125


def test_scores_sent_for_a_skipped_part_are_ignored(form):
    given = full_marks(form, "complaint", basic_skills__needs=10)
    scored = qa.score(form, "complaint", given)
    assert next(s for s in scored.items if s.item == "needs").points is None
    assert scored.maximum == 100


def test_each_wrong_item_is_named(form):
    given = full_marks(form, "complaint", attitude__tone=6, general_skills__greeting="很好", product_knowledge__plans=-1)
    del given["complaint_skills.ticket"]
    given["attitude.smile"] = 3
    with pytest.raises(qa.ScoreErrors) as raised:
        qa.score(form, "complaint", given)
    errors = raised.value.errors
    assert errors["attitude.tone"] == "服务态度 · 语气亲切,语速适中:6 分超出范围,应在 0 到 5 分之间。"
    assert "“很好”不是整数分值" in errors["general_skills.greeting"]
    assert "-1 分超出范围,应在 0 到 10 分之间" in errors["product_knowledge.plans"]
    assert errors["complaint_skills.ticket"] == "投诉处理技巧 · 工单记录完整准确:请打分(0 到 5 分)。"
    assert errors["attitude.smile"] == "评分表中没有“attitude.smile”这一项。"
    assert len(errors) == 5


def test_an_unknown_or_missing_call_type_is_refused(form):
    with pytest.raises(qa.ScoreErrors) as raised:
        qa.score(form, "sales", full_marks(form, "business"))
    assert raised.value.errors["call_type"] == ("通话类型“sales”不在呼入电话质检表中,可选:咨询(inquiry)、投诉(complaint)、"
                                                "业务办理(business)。")
    with pytest.raises(qa.ScoreErrors) as raised:
        qa.applicable_parts(form, "")
    assert raised.value.errors["call_type"].startswith("请选择通话类型")


def test_the_sample_is_the_same_for_the_same_seed_and_takes_n_per_agent():
    calls = [qa.AnsweredCall(f"c{n}", at(23, 9, n), "1380", "400", "general", agent, None, 60.0, 0.0, "hangup",
                             None, False) for n, agent in enumerate(["li_na"] * 6 + ["wang_fang"] * 2)]
    first = qa.sample_per_agent(calls, 3, seed=42)
    assert [c.call_id for c in first] == [c.call_id for c in qa.sample_per_agent(list(reversed(calls)), 3, seed=42)]
    assert [c.agent for c in first] == ["li_na"] * 3 + ["wang_fang"] * 2
    draws = {tuple(c.call_id for c in qa.sample_per_agent(calls, 3, seed=s)) for s in range(20)}
    assert len(draws) > 1      # a different seed draws differently
    with pytest.raises(ValueError):
        qa.sample_per_agent(calls, 0, seed=1)


# ------------------------------------------------------------------ storage (SQLite and PostgreSQL)

@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        log = EventLog(f"sqlite:///{tmp_path / 'qa.db'}")
        yield from _with_log(log)
        return
    with postgres_schema("qa") as url:
        yield from _with_log(EventLog(url))


def _with_log(log: EventLog):
    qa.create_tables(log.engine)
    seed_calls(log)
    yield log.engine
    log.engine.dispose()


def answered(n: int, agent: str, when: dt.datetime, talk_s: int, queue: str = "general", recording: str | None = None,
             end: str = "hangup") -> list:
    return [Call(id=f"call-{n}", bundle_hash="t", flow="hotline", caller="13800138000", dialed="4008001000",
                 started_at=when, end_reason=end, queue=queue, agent=agent, recording=recording),
            QueueVisit(call_id=f"call-{n}", queue=queue, enqueued_at=when + dt.timedelta(seconds=20),
                       outcome="answered", left_at=when + dt.timedelta(seconds=30), agent=agent,
                       talk_ended_at=when + dt.timedelta(seconds=30 + talk_s))]


def seed_calls(log: EventLog) -> None:
    log.write([
        *answered(1, "li_na", at(16, 9), 200, recording="/r/call-1.wav"),
        *answered(2, "li_na", at(17, 10), 40),
        *answered(3, "wang_fang", at(18, 11), 300, queue="complaints", recording="/r/call-3.wav", end="caller_hangup"),
        *answered(4, "li_na", at(23, 9), 150, recording="/r/call-4.wav"),
        *answered(5, "wang_fang", at(23, 9, 30), 90),
        Call(id="call-6", bundle_hash="t", flow="hotline", caller="1", dialed="4", started_at=at(23, 9, 40),
             end_reason="caller_hangup", queue="general"),
        QueueVisit(call_id="call-6", queue="general", enqueued_at=at(23, 9, 40), outcome="abandoned",
                   left_at=at(23, 9, 41)),
    ])
    # call 7: answered in general by li_na, then transferred to complaints and answered by wang_fang
    when = at(23, 10)
    log.write([Call(id="call-7", bundle_hash="t", flow="hotline", caller="1", dialed="4", started_at=when,
                    end_reason="hangup", queue="complaints", agent="wang_fang"),
               QueueVisit(call_id="call-7", queue="general", enqueued_at=when, outcome="answered",
                          left_at=when + dt.timedelta(seconds=5), agent="li_na",
                          talk_ended_at=when + dt.timedelta(seconds=65)),
               QueueVisit(call_id="call-7", queue="complaints", enqueued_at=when + dt.timedelta(seconds=70),
                          outcome="answered", left_at=when + dt.timedelta(seconds=80), agent="wang_fang",
                          talk_ended_at=when + dt.timedelta(seconds=200))])


def everything(**changes) -> qa.CallFilter:
    return qa.CallFilter(since=at(1, 0), until=at(30, 0), **changes)


def ids(calls) -> list[str]:
    return [c.call_id for c in calls]


def test_answered_calls_by_filter(engine):
    with engine.connect() as connection:
        assert ids(qa.answered_calls(connection, everything())) == [f"call-{n}" for n in (1, 2, 3, 4, 5, 7)]
        seventh = qa.answered_call(connection, "call-7")
        assert (seventh.agent, seventh.queue, seventh.talk_s) == ("wang_fang", "complaints", 120.0)
        assert qa.answered_call(connection, "call-6") is None     # abandoned: nobody to score
        assert ids(qa.answered_calls(connection, everything(agent="li_na"))) == ["call-1", "call-2", "call-4"]
        assert ids(qa.answered_calls(connection, everything(queue="complaints"))) == ["call-3", "call-7"]
        assert ids(qa.answered_calls(connection, everything(min_talk_s=150))) == ["call-1", "call-3", "call-4"]
        assert ids(qa.answered_calls(connection, everything(recorded=True))) == ["call-1", "call-3", "call-4"]
        assert ids(qa.answered_calls(connection, everything(recorded=False))) == ["call-2", "call-5", "call-7"]
        assert ids(qa.answered_calls(connection, everything(outcome="caller_hangup"))) == ["call-3"]
        week = qa.CallFilter(since=at(23, 0), until=at(24, 0))
        assert ids(qa.answered_calls(connection, week)) == ["call-4", "call-5", "call-7"]


def test_a_review_is_saved_replaced_and_read_back(engine, form):
    scored = qa.score(form, "complaint", full_marks(form, "complaint", attitude__tone=3))
    with engine.begin() as connection:
        call = qa.answered_call(connection, "call-3")
        saved = qa.save_review(connection, form, call.call_id, call.agent, call.started_at, "sun_li", scored,
                               "  语气偏急,已辅导。 ", at(23, 11))
    assert (saved.agent, saved.reviewer, saved.call_type, saved.total, saved.maximum) == (
        "wang_fang", "sun_li", "complaint", 98, 100)
    assert saved.note == "语气偏急,已辅导。" and saved.percent == 0.98
    assert saved.points("attitude", "tone") == 3 and saved.points("basic_skills", "needs") is None
    assert saved.part_totals()["basic_skills"] is None and saved.part_totals()["attitude"] == (18, 20)
    assert saved.call_at == at(18, 11)

    rescored = qa.score(form, "business", full_marks(form, "business", product_knowledge__plans=5))
    with engine.begin() as connection:
        again = qa.save_review(connection, form, "call-3", "wang_fang", at(18, 11), "zhao_min", rescored, "改为业务办理",
                               at(23, 12))
    assert again.id == saved.id and (again.total, again.maximum, again.reviewer) == (120, 125, "zhao_min")
    assert again.created_at == at(23, 11) and again.updated_at == at(23, 12)
    with engine.connect() as connection:
        assert [r.id for r in qa.reviews_of_agent(connection, "wang_fang")] == [saved.id]
        assert qa.reviews_of_agent(connection, "li_na") == []
        assert list(qa.reviews_of_calls(connection, ["call-3", "call-4"])) == ["call-3"]
        assert len(qa.review_of(connection, "call-3", "inbound").scores) == 19
        assert ids(qa.answered_calls(connection, everything(reviewed=True))) == ["call-3"]
        assert ids(qa.answered_calls(connection, everything(reviewed=False))) == [
            f"call-{n}" for n in (1, 2, 4, 5, 7)]


def test_trends_per_agent_per_week_and_per_criterion(engine, form):
    plan = [("call-1", "inquiry", {}),                                          # li_na, week of 16 Nov: 95/95
            ("call-2", "inquiry", {"attitude__tone": 0, "basic_skills__needs": 0}),   # li_na, same week: 80/95
            ("call-4", "complaint", {"attitude__tone": 5, "complaint_skills__solution": 0}),  # li_na, 23 Nov: 90/100
            ("call-3", "complaint", {"attitude__tone": 1})]                    # wang_fang, week of 16 Nov: 96/100
    with engine.begin() as connection:
        for call_id, kind, changes in plan:
            call = qa.answered_call(connection, call_id)
            qa.save_review(connection, form, call_id, call.agent, call.started_at, "sun_li",
                           qa.score(form, kind, full_marks(form, kind, **changes)), "", at(23, 12))
    with engine.connect() as connection:
        trend = qa.agent_trend(connection, "inbound", at(1, 0), at(30, 0), "week", SHANGHAI)
        assert [(r["agent"], r["start"].isoformat(), r["reviews"], round(r["percent"], 4)) for r in trend] == [
            ("li_na", "2026-11-16", 2, round((95 / 95 + 80 / 95) / 2, 4)),
            ("li_na", "2026-11-23", 1, 0.9),
            ("wang_fang", "2026-11-16", 1, 0.96)]
        daily = qa.agent_trend(connection, "inbound", at(1, 0), at(30, 0), "day", SHANGHAI, agent="li_na")
        assert [r["start"].isoformat() for r in daily] == ["2026-11-16", "2026-11-17", "2026-11-23"]
        monthly = qa.agent_trend(connection, "inbound", at(1, 0), at(30, 0), "month", SHANGHAI)
        assert [(r["agent"], r["start"].isoformat(), r["reviews"]) for r in monthly] == [
            ("li_na", "2026-11-01", 3), ("wang_fang", "2026-11-01", 1)]

        criteria = {(r["agent"], r["part"], r["item"]): r for r in
                    qa.criterion_averages(connection, "inbound", at(1, 0), at(30, 0))}
        tone = criteria[("li_na", "attitude", "tone")]
        assert (tone["scored"], tone["points"], tone["possible"]) == (3, 10, 15)
        assert criteria[("li_na", "basic_skills", "needs")]["percent"] == 0.5        # 10 + 0 of 20; call-4 skipped it
        assert criteria[("li_na", "complaint_skills", "solution")]["percent"] == 0.0
        assert ("wang_fang", "basic_skills", "needs") not in criteria               # only a complaint reviewed
        parts = qa.part_averages(list(criteria.values()))
        assert parts[("li_na", "attitude")] == pytest.approx(55 / 60)   # tone 10 of 15, the rest full
        assert qa.criterion_averages(connection, "inbound", at(23, 0), at(24, 0), agent="wang_fang") == []
