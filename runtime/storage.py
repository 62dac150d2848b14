"""The event log: what happened on every call, in a database.

SQLite by default (a file, nothing to install); PostgreSQL when given its URL.  Six tables:

- `calls`         one row per call: the call detail record (CDR).
- `call_events`   each step, prompt, key and command of a call, in order.
- `queue_visits`  one row per call per queue it waited in: the source of the queue KPIs.
- `agent_states`  each change of an agent's state, with its reason: the source of agent KPIs.
- `voicemails`    each message a caller left, with its recording.
- `callbacks`     the calls agents owe customers: asked for in a voicemail, or promised by an agent.

Rows are written in batches, one transaction per batch, so a crash never leaves half a batch.
Times are timezone-aware (UTC in the database).
"""
from __future__ import annotations

import datetime
from typing import Iterable, Optional

from sqlalchemy import JSON, Column, Index, event
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, create_engine, select


class Call(SQLModel, table=True):
    __tablename__ = "calls"

    id: str = Field(primary_key=True)
    bundle_hash: str
    flow: str
    caller: str
    dialed: str
    started_at: datetime.datetime = Field(index=True)
    ended_at: Optional[datetime.datetime] = None
    end_reason: Optional[str] = None       # hangup, caller_hangup, transferred, voicemail, error...
    last_step: Optional[str] = None
    queue: Optional[str] = None            # the last queue it waited in
    agent: Optional[str] = None            # the agent who took it
    recording: Optional[str] = None        # path of the call recording
    test: bool = False                     # a simulated or test call


class CallEvent(SQLModel, table=True):
    __tablename__ = "call_events"
    __table_args__ = (Index("ix_call_events_call_seq", "call_id", "seq"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    call_id: str = Field(foreign_key="calls.id")
    seq: int
    at: datetime.datetime
    kind: str                              # step, event, command
    name: str                              # e.g. menu, DigitPressed, Say
    data: dict = Field(default_factory=dict, sa_column=Column(JSON))


class QueueVisit(SQLModel, table=True):
    __tablename__ = "queue_visits"
    __table_args__ = (Index("ix_queue_visits_queue_time", "queue", "enqueued_at"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    call_id: str = Field(foreign_key="calls.id", index=True)
    queue: str
    priority: int = 0
    enqueued_at: datetime.datetime
    outcome: Optional[str] = None          # answered, abandoned, overflow, callback, transferred
    left_at: Optional[datetime.datetime] = None   # when it stopped waiting (answered, abandoned, overflowed)
    agent: Optional[str] = None
    talk_ended_at: Optional[datetime.datetime] = None
    hold_ms: int = 0
    wrapup_ended_at: Optional[datetime.datetime] = None


class AgentState(SQLModel, table=True):
    __tablename__ = "agent_states"
    __table_args__ = (Index("ix_agent_states_agent_time", "agent", "at"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    agent: str
    state: str                             # logged_out, ready, not_ready, ringing, on_call, wrap_up
    reason: Optional[str] = None
    at: datetime.datetime


class Voicemail(SQLModel, table=True):
    __tablename__ = "voicemails"

    id: Optional[int] = Field(default=None, primary_key=True)
    call_id: str = Field(foreign_key="calls.id", index=True)
    box: str
    caller: str
    left_at: datetime.datetime = Field(index=True)
    recording: Optional[str] = None        # path of the message, once fetched from the telephone system


class CallbackTask(SQLModel, table=True):
    """A call owed to a customer.  Open until an agent calls back (done) or it is cancelled."""
    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_status_due", "status", "due_at"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    number: str
    call_id: Optional[str] = Field(default=None, foreign_key="calls.id", index=True)  # the call that asked for it
    reason: str                            # "voicemail after_hours", or the agent's own words
    requested_at: datetime.datetime
    due_at: Optional[datetime.datetime] = None   # when the customer wants the call; None: as soon as possible
    requested_by: Optional[str] = None     # the agent who promised it; None when the caller asked
    status: str = "open"                   # open, done, cancelled
    agent: Optional[str] = None            # who called back
    done_at: Optional[datetime.datetime] = None


TABLES = [Call.__table__, CallEvent.__table__, QueueVisit.__table__, AgentState.__table__, Voicemail.__table__,
          CallbackTask.__table__]


def sqlite_url(path) -> str:
    return f"sqlite:///{path}"


def open_engine(url: str) -> Engine:
    """An engine for the event log; creates the tables that are missing."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    SQLModel.metadata.create_all(engine, tables=TABLES)
    return engine


def _sqlite_pragmas(connection, _record) -> None:
    # WAL lets the studio read reports while the runtime writes; foreign keys keep rows tied to calls.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class EventLog:
    """Writes and reads the event log.  `write` takes any mix of the four row types."""

    def __init__(self, url: str):
        self.engine = open_engine(url)

    def write(self, rows: Iterable[SQLModel]) -> None:
        rows = list(rows)
        if not rows:
            return
        # The rows stay usable after the write: a running call centre keeps updating them.
        with Session(self.engine, expire_on_commit=False) as session:
            for row in rows:
                session.merge(row) if isinstance(row, _UPDATED_IN_PLACE) and _has_key(row) else session.add(row)
            session.commit()

    def call(self, call_id: str) -> Call | None:
        with Session(self.engine) as session:
            return session.get(Call, call_id)

    def events(self, call_id: str) -> list[CallEvent]:
        with Session(self.engine) as session:
            return list(session.exec(select(CallEvent).where(CallEvent.call_id == call_id).order_by(CallEvent.seq)))

    def queue_visits(self, since: datetime.datetime, until: datetime.datetime,
                     queue: str | None = None) -> list[QueueVisit]:
        with Session(self.engine) as session:
            query = select(QueueVisit).where(QueueVisit.enqueued_at >= since, QueueVisit.enqueued_at < until)
            if queue:
                query = query.where(QueueVisit.queue == queue)
            return list(session.exec(query.order_by(QueueVisit.enqueued_at, QueueVisit.id)))

    def agent_states(self, until: datetime.datetime, agent: str | None = None) -> list[AgentState]:
        with Session(self.engine) as session:
            query = select(AgentState).where(AgentState.at < until)
            if agent:
                query = query.where(AgentState.agent == agent)
            return list(session.exec(query.order_by(AgentState.agent, AgentState.at, AgentState.id)))

    def voicemails(self, call_id: str) -> list[Voicemail]:
        with Session(self.engine) as session:
            return list(session.exec(select(Voicemail).where(Voicemail.call_id == call_id).order_by(Voicemail.id)))

    def callbacks(self, status: str | None = "open") -> list[CallbackTask]:
        """Callback tasks, oldest first (those with a due time by that time)."""
        with Session(self.engine) as session:
            query = select(CallbackTask)
            if status:
                query = query.where(CallbackTask.status == status)
            return list(session.exec(query.order_by(CallbackTask.requested_at, CallbackTask.id)))

    def calls(self, since: datetime.datetime, until: datetime.datetime) -> list[Call]:
        with Session(self.engine) as session:
            query = select(Call).where(Call.started_at >= since, Call.started_at < until)
            return list(session.exec(query.order_by(Call.started_at)))


# Rows a running call centre writes more than once (the rest are written once, in order).
_UPDATED_IN_PLACE = (Call, QueueVisit, Voicemail)


def _has_key(row) -> bool:
    return getattr(row, "id", None) is not None
