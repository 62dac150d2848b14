"""Quality assurance: calls scored on the project's evaluation forms, and what is read from the scores.

- Scoring (pure): which parts of a form apply to a call type (`applicable_parts`), and a reviewer's
  scores checked against the form (`score`): every item of the applicable parts scored from 0 to
  its points; the parts `not for` the call type are skipped and count neither in the total nor in
  the maximum.
- Storage: one review per (call, evaluation) in `qa_reviews`, each item's score in `qa_scores`.
  The form's points are copied onto every score, so a review keeps its meaning after the form changes.
- Choosing calls: answered calls by period, queue, agent, end of call, talk time, reviewed or not,
  with a recording or not (`answered_calls`), and a random sample of N per agent (`sample_per_agent`).
- Trends: each agent's average score per day, week or month (`agent_trend`), and per criterion
  (part and item) per agent (`criterion_averages`), over the time of the calls.

An answered call is a call with an answered queue visit; its agent is the one who answered its
last answered visit (a call transferred on to a second queue is that second agent's).
"""
from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import (Boolean, Column, DateTime, ForeignKey, Index, Integer, MetaData, PrimaryKeyConstraint,
                        String, Table, Text, UniqueConstraint, delete, func, insert, select, update)
from sqlalchemy.engine import Connection, Engine

from compiler import ir
from runtime.storage import Call, QueueVisit
from runtime.times import as_utc

REVIEWS_TABLE = "qa_reviews"
SCORES_TABLE = "qa_scores"
INTERVALS = ("day", "week", "month")

METADATA = MetaData()
REVIEWS = Table(
    REVIEWS_TABLE, METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # No foreign key to `calls`: the event log's tables belong to another metadata, and a review
    # outlives a call log that is pruned.
    Column("call_id", String(64), nullable=False),
    Column("evaluation", String(64), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("reviewer", String(64), nullable=False),
    Column("call_type", String(64), nullable=False),
    Column("call_at", DateTime(timezone=True), nullable=False),   # when the call began: trends read this
    Column("total", Integer, nullable=False),
    Column("maximum", Integer, nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("call_id", "evaluation", name="uq_qa_reviews_call_evaluation"),
)
Index("ix_qa_reviews_agent_time", REVIEWS.c.agent, REVIEWS.c.call_at)
SCORES = Table(
    SCORES_TABLE, METADATA,
    Column("review_id", Integer, ForeignKey(f"{REVIEWS_TABLE}.id", ondelete="CASCADE"), nullable=False),
    Column("part", String(64), nullable=False),
    Column("item", String(64), nullable=False),
    Column("points", Integer),                        # None when skipped
    Column("max_points", Integer, nullable=False),
    Column("skipped", Boolean, nullable=False, default=False),
    PrimaryKeyConstraint("review_id", "part", "item", name="pk_qa_scores"),
)


def create_tables(engine: Engine) -> None:
    METADATA.create_all(engine, tables=[REVIEWS, SCORES])


# ------------------------------------------------------------------ scoring

class ScoreErrors(ValueError):
    """Scores that do not fit the form: `errors` maps the field ("call_type", "part.item") to what is wrong."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(";".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class ItemScore:
    part: str
    item: str
    points: int | None        # None: skipped, the part is not for this call type
    max_points: int

    @property
    def skipped(self) -> bool:
        return self.points is None


@dataclass(frozen=True)
class Scored:
    call_type: str
    items: list[ItemScore]

    @property
    def total(self) -> int:
        return sum(s.points for s in self.items if s.points is not None)

    @property
    def maximum(self) -> int:
        return sum(s.max_points for s in self.items if not s.skipped)


def item_key(part: ir.EvalPart | str, item: ir.EvalItem | str) -> str:
    """How an item is named in a form and in errors: "part.item"."""
    return f"{getattr(part, 'name', part)}.{getattr(item, 'name', item)}"


def call_type_label(evaluation: ir.Evaluation, name: str) -> str:
    return next((c.label or c.name for c in evaluation.call_types if c.name == name), name)


def applicable_parts(evaluation: ir.Evaluation, call_type: str) -> list[ir.EvalPart]:
    """The parts scored for a call of `call_type`: all but those `not for` it."""
    if call_type not in {c.name for c in evaluation.call_types}:
        raise ScoreErrors({"call_type": unknown_call_type(evaluation, call_type)})
    return [part for part in evaluation.parts if call_type not in part.not_for]


def unknown_call_type(evaluation: ir.Evaluation, call_type: str) -> str:
    known = "、".join(f"{c.label or c.name}({c.name})" for c in evaluation.call_types)
    if not call_type:
        return f"请选择通话类型:{known}。"
    return f"通话类型“{call_type}”不在{evaluation.title or evaluation.name}中,可选:{known}。"


def score(evaluation: ir.Evaluation, call_type: str, given: dict[str, object]) -> Scored:
    """The reviewer's scores (`given`: "part.item" -> a whole number of points, as typed) checked
    against the form.  Scores given for a skipped part are ignored: the call type decides.
    Raises ScoreErrors naming every item that is missing, unknown or out of range."""
    parts = applicable_parts(evaluation, call_type)
    known = {item_key(p, i) for p in evaluation.parts for i in p.items}
    errors = {key: f"评分表中没有“{key}”这一项。" for key in given if key not in known}
    items = []
    for part in evaluation.parts:
        scored = part in parts
        for item in part.items:
            key = item_key(part, item)
            if not scored:
                items.append(ItemScore(part.name, item.name, None, item.points))
                continue
            points, problem = read_points(given.get(key), item.points)
            if problem:
                errors[key] = f"{part.title or part.name} · {item.title or item.name}:{problem}"
            items.append(ItemScore(part.name, item.name, points, item.points))
    if errors:
        raise ScoreErrors(errors)
    return Scored(call_type, items)


def read_points(raw: object, most: int) -> tuple[int | None, str | None]:
    """A typed score as points, or what is wrong with it."""
    text = "" if raw is None else str(raw).strip()
    if not text:
        return None, f"请打分(0 到 {most} 分)。"
    try:
        points = int(text)
    except ValueError:
        return None, f"“{text}”不是整数分值,应为 0 到 {most} 之间的整数。"
    if not 0 <= points <= most:
        return None, f"{points} 分超出范围,应在 0 到 {most} 分之间。"
    return points, None


# ------------------------------------------------------------------ reviews

@dataclass
class Review:
    id: int
    call_id: str
    evaluation: str
    agent: str
    reviewer: str
    call_type: str
    call_at: dt.datetime
    total: int
    maximum: int
    note: str
    created_at: dt.datetime
    updated_at: dt.datetime
    scores: list[ItemScore] = field(default_factory=list)

    @property
    def percent(self) -> float | None:
        return self.total / self.maximum if self.maximum else None

    def points(self, part: str, item: str) -> int | None:
        return next((s.points for s in self.scores if s.part == part and s.item == item), None)

    def part_totals(self) -> dict[str, tuple[int, int] | None]:
        """(points, maximum) per part; None for a skipped part."""
        out: dict[str, tuple[int, int] | None] = {}
        for s in self.scores:
            if s.skipped:
                out.setdefault(s.part, None)
            else:
                got, most = out.get(s.part) or (0, 0)
                out[s.part] = (got + s.points, most + s.max_points)
        return out


def save_review(connection: Connection, evaluation: ir.Evaluation, call_id: str, agent: str, call_at: dt.datetime,
                reviewer: str, scored: Scored, note: str, now: dt.datetime) -> Review:
    """Records the review of a call on a form; a second save of the same call and form replaces its
    scores and note (the reviewer is the last one who saved; the creation time stays)."""
    values = {"agent": agent, "reviewer": reviewer, "call_type": scored.call_type, "call_at": as_utc(call_at),
              "total": scored.total, "maximum": scored.maximum, "note": note.strip(), "updated_at": as_utc(now)}
    found = connection.execute(select(REVIEWS.c.id).where(REVIEWS.c.call_id == call_id,
                                                          REVIEWS.c.evaluation == evaluation.name)).scalar()
    if found is None:
        found = connection.execute(insert(REVIEWS).values(call_id=call_id, evaluation=evaluation.name,
                                                          created_at=as_utc(now), **values)).inserted_primary_key[0]
    else:
        connection.execute(update(REVIEWS).where(REVIEWS.c.id == found).values(**values))
        connection.execute(delete(SCORES).where(SCORES.c.review_id == found))
    connection.execute(insert(SCORES), [
        {"review_id": found, "part": s.part, "item": s.item, "points": s.points, "max_points": s.max_points,
         "skipped": s.skipped} for s in scored.items])
    return reviews(connection, REVIEWS.c.id == found)[0]


def reviews(connection: Connection, *where) -> list[Review]:
    """Reviews matching `where` (conditions on REVIEWS), newest call first, with their scores."""
    rows = connection.execute(select(REVIEWS).where(*where).order_by(REVIEWS.c.call_at.desc(), REVIEWS.c.id.desc()))
    found = [Review(**{**row._mapping, "call_at": as_utc(row.call_at), "created_at": as_utc(row.created_at),
                       "updated_at": as_utc(row.updated_at)}) for row in rows]
    by_id = {r.id: r for r in found}
    for chunk in _chunks(list(by_id), 500):
        for s in connection.execute(select(SCORES).where(SCORES.c.review_id.in_(chunk))):
            by_id[s.review_id].scores.append(ItemScore(s.part, s.item, None if s.skipped else s.points, s.max_points))
    return found


def review_of(connection: Connection, call_id: str, evaluation: str) -> Review | None:
    found = reviews(connection, REVIEWS.c.call_id == call_id, REVIEWS.c.evaluation == evaluation)
    return found[0] if found else None


def reviews_of_agent(connection: Connection, agent: str) -> list[Review]:
    return reviews(connection, REVIEWS.c.agent == agent)


def reviews_of_calls(connection: Connection, call_ids: list[str]) -> dict[str, list[Review]]:
    out: dict[str, list[Review]] = {}
    for chunk in _chunks(call_ids, 500):
        for review in reviews(connection, REVIEWS.c.call_id.in_(chunk)):
            out.setdefault(review.call_id, []).append(review)
    return out


def _chunks(values: list, size: int):
    for start in range(0, len(values), size):
        yield values[start:start + size]


# ------------------------------------------------------------------ choosing calls

@dataclass(frozen=True)
class CallFilter:
    """Which answered calls to list: those begun in [since, until), and optionally only those of a
    queue or an agent, ended a certain way (`calls.end_reason`), talked at least `min_talk_s`,
    reviewed or not (on any form), with a recording or without."""
    since: dt.datetime
    until: dt.datetime
    queue: str | None = None
    agent: str | None = None
    outcome: str | None = None
    min_talk_s: float | None = None
    reviewed: bool | None = None
    recorded: bool | None = None


@dataclass(frozen=True)
class AnsweredCall:
    call_id: str
    started_at: dt.datetime
    caller: str
    dialed: str
    queue: str
    agent: str
    answered_at: dt.datetime | None
    talk_s: float | None       # from answer to the end of the talk; None while it goes on
    hold_s: float
    end_reason: str | None
    recording: str | None
    test: bool


CALLS = Call.__table__
VISITS = QueueVisit.__table__


def answered_calls(connection: Connection, wanted: CallFilter) -> list[AnsweredCall]:
    """The answered calls `wanted` asks for, oldest first."""
    query = _answered_query().where(CALLS.c.started_at >= as_utc(wanted.since),
                                    CALLS.c.started_at < as_utc(wanted.until))
    if wanted.queue:
        query = query.where(VISITS.c.queue == wanted.queue)
    if wanted.outcome:
        query = query.where(CALLS.c.end_reason == wanted.outcome)
    if wanted.recorded is not None:
        query = query.where(CALLS.c.recording.is_not(None) if wanted.recorded else CALLS.c.recording.is_(None))
    if wanted.reviewed is not None:
        reviewed = CALLS.c.id.in_(select(REVIEWS.c.call_id))
        query = query.where(reviewed if wanted.reviewed else ~reviewed)
    calls = _last_answered(connection.execute(query))
    # The agent is the one of the call's last answered visit: filtered after that visit is chosen.
    return [c for c in calls if (not wanted.agent or c.agent == wanted.agent)
            and (not wanted.min_talk_s or (c.talk_s or 0) >= wanted.min_talk_s)]


def answered_call(connection: Connection, call_id: str) -> AnsweredCall | None:
    found = _last_answered(connection.execute(_answered_query().where(CALLS.c.id == call_id)))
    return found[0] if found else None


def _answered_query():
    return (select(CALLS.c.id, CALLS.c.started_at, CALLS.c.caller, CALLS.c.dialed, CALLS.c.end_reason,
                   CALLS.c.recording, CALLS.c.test, VISITS.c.queue, VISITS.c.agent, VISITS.c.left_at,
                   VISITS.c.talk_ended_at, VISITS.c.hold_ms)
            .join(VISITS, VISITS.c.call_id == CALLS.c.id)
            .where(VISITS.c.outcome == "answered", VISITS.c.agent.is_not(None))
            .order_by(CALLS.c.started_at, CALLS.c.id, VISITS.c.enqueued_at, VISITS.c.id))


def _last_answered(rows) -> list[AnsweredCall]:
    by_call: dict[str, AnsweredCall] = {}
    for row in rows:
        answered, ended = as_utc(row.left_at), as_utc(row.talk_ended_at)
        by_call[row.id] = AnsweredCall(
            call_id=row.id, started_at=as_utc(row.started_at), caller=row.caller, dialed=row.dialed,
            queue=row.queue, agent=row.agent, answered_at=answered,
            talk_s=(ended - answered).total_seconds() if answered and ended else None,
            hold_s=(row.hold_ms or 0) / 1000, end_reason=row.end_reason, recording=row.recording,
            test=bool(row.test))
    return list(by_call.values())


def sample_per_agent(calls: list[AnsweredCall], per_agent: int, seed: int | str) -> list[AnsweredCall]:
    """Up to `per_agent` calls of each agent, drawn at random; the same calls and seed draw the same sample."""
    if per_agent < 1:
        raise ValueError("每位坐席至少抽取 1 通。")
    by_agent: dict[str, list[AnsweredCall]] = {}
    for call in sorted(calls, key=lambda c: c.call_id):
        by_agent.setdefault(call.agent, []).append(call)
    draw = random.Random(str(seed))
    picked = []
    for agent in sorted(by_agent):
        mine = by_agent[agent]
        picked += draw.sample(mine, min(per_agent, len(mine)))
    return sorted(picked, key=lambda c: (c.agent, c.started_at, c.call_id))


# ------------------------------------------------------------------ trends

def interval_start(at: dt.datetime, interval: str, tz: ZoneInfo) -> dt.date:
    """The first day of the day, week (from Monday) or month `at` falls in, on the wall clock of `tz`."""
    day = at.astimezone(tz).date()
    if interval == "week":
        return day - dt.timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def agent_trend(connection: Connection, evaluation: str, since: dt.datetime, until: dt.datetime, interval: str,
                tz: ZoneInfo, agent: str | None = None) -> list[dict]:
    """Per (agent, interval of the call's time): the reviews and their average score (each review's
    total over its own maximum, averaged, so a complaint call weighs as much as an inquiry)."""
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}; one of {', '.join(INTERVALS)}")
    where = [REVIEWS.c.evaluation == evaluation, REVIEWS.c.call_at >= as_utc(since), REVIEWS.c.call_at < as_utc(until),
             REVIEWS.c.maximum > 0]
    if agent:
        where.append(REVIEWS.c.agent == agent)
    groups: dict[tuple[str, dt.date], list[float]] = {}
    query = select(REVIEWS.c.agent, REVIEWS.c.call_at, REVIEWS.c.total, REVIEWS.c.maximum).where(*where)
    for row in connection.execute(query):
        start = interval_start(as_utc(row.call_at), interval, tz)
        groups.setdefault((row.agent, start), []).append(row.total / row.maximum)
    return [{"agent": a, "start": start, "reviews": len(shares), "percent": sum(shares) / len(shares)}
            for (a, start), shares in sorted(groups.items())]


def criterion_averages(connection: Connection, evaluation: str, since: dt.datetime, until: dt.datetime,
                       agent: str | None = None) -> list[dict]:
    """Per (agent, part, item): how often it was scored and the share of its points given
    (points given over points possible; skipped items count for nothing)."""
    where = [REVIEWS.c.evaluation == evaluation, REVIEWS.c.call_at >= as_utc(since), REVIEWS.c.call_at < as_utc(until),
             SCORES.c.skipped.is_(False)]
    if agent:
        where.append(REVIEWS.c.agent == agent)
    query = (select(REVIEWS.c.agent, SCORES.c.part, SCORES.c.item, func.count().label("scored"),
                    func.sum(SCORES.c.points).label("points"), func.sum(SCORES.c.max_points).label("possible"))
             .join(REVIEWS, REVIEWS.c.id == SCORES.c.review_id).where(*where)
             .group_by(REVIEWS.c.agent, SCORES.c.part, SCORES.c.item))
    return [{"agent": row.agent, "part": row.part, "item": row.item, "scored": row.scored,
             "points": int(row.points), "possible": int(row.possible),
             "percent": int(row.points) / int(row.possible) if row.possible else None}
            for row in connection.execute(query)]


def part_averages(criteria: list[dict]) -> dict[tuple[str, str], float | None]:
    """(agent, part) -> points given over points possible, from `criterion_averages` rows."""
    sums: dict[tuple[str, str], list[int]] = {}
    for row in criteria:
        got = sums.setdefault((row["agent"], row["part"]), [0, 0])
        got[0] += row["points"]
        got[1] += row["possible"]
    return {key: (points / possible if possible else None) for key, (points, possible) in sums.items()}
