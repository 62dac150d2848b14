"""The syntax tree of the flowdesk language.

Plain dataclasses, one per construct, each with the source position it came from.  The parser
builds them (``dsl.transformer``), the formatter prints them back (``dsl.formatter``) and the
compiler reads them (``compiler``).  Declaration bodies keep their items in source order so
that the formatter can keep comments beside the item they describe.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Union


@dataclass(frozen=True)
class Pos:
    line: int
    column: int
    end_line: int
    end_column: int


NOWHERE = Pos(0, 0, 0, 0)


def where(precise: Pos, fallback: Pos) -> Pos:
    """The precise position when the parser recorded one, else the enclosing node's."""
    return precise if precise != NOWHERE else fallback


@dataclass(kw_only=True)
class Node:
    pos: Pos = NOWHERE
    # `#` comment lines written just above this node, and one written after it on its last line.
    comments: list[str] = field(default_factory=list, compare=False)
    trailing_comment: str | None = field(default=None, compare=False)
    # Comments written after the last item of a body, before its closing brace (or the file's end).
    end_comments: list[str] = field(default_factory=list, compare=False)


# ------------------------------------------------------------------ expressions

@dataclass(kw_only=True)
class Literal(Node):
    """A constant.  `kind` is one of text, number, duration, date, bool, none."""
    kind: str
    value: object  # str | Decimal | int (milliseconds for durations) | datetime.date | bool | None


@dataclass(kw_only=True)
class Ref(Node):
    """A dotted name: `caller`, `customer.tier`, `env.HOTLINE`."""
    parts: list[str]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(kw_only=True)
class Call(Node):
    """A built-in function: `open(office)`, `len(phone)`."""
    name: str
    args: list["Expr"]


@dataclass(kw_only=True)
class Not(Node):
    operand: "Expr"


@dataclass(kw_only=True)
class Binary(Node):
    """`left op right` where op is one of or, and, == != < <= > >=, + - * /."""
    op: str
    left: "Expr"
    right: "Expr"


@dataclass(kw_only=True)
class In(Node):
    subject: "Expr"
    options: list["Expr"]
    negated: bool = False


Expr = Union[Literal, Ref, Call, Not, Binary, In]


# ------------------------------------------------------------------ types

@dataclass(kw_only=True)
class EnumValue(Node):
    name: str
    label: str | None = None


@dataclass(kw_only=True)
class TypeRef(Node):
    """`text`, `enum(a, b)`, `ref Customer`, `list of Tag`."""
    kind: str  # simple | enum | ref | list
    name: str | None = None
    values: list[EnumValue] = field(default_factory=list)


# ------------------------------------------------------------------ flow statements

@dataclass(kw_only=True)
class Block(Node):
    statements: list["Stmt"]


@dataclass(kw_only=True)
class GotoTarget(Node):
    """`-> label` as a branch."""
    label: str


Target = Union[Block, GotoTarget]


@dataclass(kw_only=True)
class Stmt(Node):
    label: str | None = None
    # Where the name this statement refers to (queue, entity, flow, label, digit type) is written.
    ref_pos: Pos = field(default=NOWHERE, compare=False)

    kind = "statement"


@dataclass(kw_only=True)
class Answer(Stmt):
    kind = "answer"


@dataclass(kw_only=True)
class Say(Stmt):
    text: str
    kind = "say"


@dataclass(kw_only=True)
class Play(Stmt):
    sound: str
    kind = "play"


@dataclass(kw_only=True)
class MenuOption(Node):
    key: str
    title: str | None
    target: Target


@dataclass(kw_only=True)
class EventHandler(Node):
    """`on timeout {...}`, `on invalid -> x`, `on failure -> y`."""
    event: str
    target: Target


@dataclass(kw_only=True)
class Setting(Node):
    """A keyword setting inside a menu or collect: prompt, timeout, retries, length, terminator, valid."""
    key: str
    value: object
    value2: object = None


@dataclass(kw_only=True)
class Menu(Stmt):
    items: list[Union[Setting, MenuOption, EventHandler]]
    kind = "menu"


@dataclass(kw_only=True)
class Collect(Stmt):
    var: str
    type: str
    items: list[Union[Setting, EventHandler]]
    kind = "collect"


@dataclass(kw_only=True)
class Set(Stmt):
    target: Ref
    value: Expr
    kind = "set"


@dataclass(kw_only=True)
class Branch(Node):
    condition: Expr
    target: Target


@dataclass(kw_only=True)
class If(Stmt):
    branches: list[Branch]
    otherwise: Target | None = None
    kind = "if"


@dataclass(kw_only=True)
class Case(Node):
    values: list[Expr]
    target: Target


@dataclass(kw_only=True)
class Switch(Stmt):
    subject: Expr
    cases: list[Case]
    otherwise: Target | None = None
    kind = "switch"


@dataclass(kw_only=True)
class Lookup(Stmt):
    var: str
    entity: str
    where: Expr
    otherwise: Target | None = None
    kind = "lookup"


@dataclass(kw_only=True)
class FieldAssign(Node):
    name: str
    value: Expr


@dataclass(kw_only=True)
class Create(Stmt):
    var: str | None
    entity: str
    fields: list[FieldAssign]
    kind = "create"


@dataclass(kw_only=True)
class Update(Stmt):
    target: Ref
    fields: list[FieldAssign]
    kind = "update"


@dataclass(kw_only=True)
class HttpField(Node):
    name: str
    type: TypeRef


@dataclass(kw_only=True)
class Http(Stmt):
    var: str
    method: str
    url: Expr
    items: list[Setting]  # timeout, header (value=name, value2=expr), body (value=expr), returns (value=list[HttpField])
    otherwise: Target
    kind = "http"


@dataclass(kw_only=True)
class Enqueue(Stmt):
    queue: str
    priority: int | None = None
    prefer: Expr | None = None
    prefer_for_ms: int | None = None
    kind = "enqueue"


@dataclass(kw_only=True)
class TransferNumber(Stmt):
    number: Expr
    kind = "transfer_number"


@dataclass(kw_only=True)
class TransferAgent(Stmt):
    agent: Expr
    timeout_ms: int | None
    otherwise: Target
    kind = "transfer_agent"


@dataclass(kw_only=True)
class Voicemail(Stmt):
    box: str
    callback: bool = False
    kind = "voicemail"


@dataclass(kw_only=True)
class Record(Stmt):
    kind = "record"


@dataclass(kw_only=True)
class Survey(Stmt):
    flow: str
    kind = "survey"


@dataclass(kw_only=True)
class Goto(Stmt):
    target_label: str
    kind = "goto"


@dataclass(kw_only=True)
class Subflow(Stmt):
    flow: str
    kind = "subflow"


@dataclass(kw_only=True)
class Return(Stmt):
    kind = "return"


@dataclass(kw_only=True)
class Repeat(Stmt):
    kind = "repeat"


@dataclass(kw_only=True)
class Hangup(Stmt):
    kind = "hangup"


# ------------------------------------------------------------------ declarations

@dataclass(kw_only=True)
class Decl(Node):
    name: str
    title: str | None = None
    # Where the entity after `for` is written (forms, lists, workflows).
    ref_pos: Pos = field(default=NOWHERE, compare=False)

    keyword = "declaration"


@dataclass(kw_only=True)
class Import(Node):
    path: str


@dataclass(kw_only=True)
class DayRange(Node):
    first: str
    last: str | None = None


@dataclass(kw_only=True)
class TimeRange(Node):
    start: str  # "08:00"
    end: str    # "20:00"; "24:00" means midnight at the end of the day


@dataclass(kw_only=True)
class HoursItem(Node):
    """timezone (text), weekly (days, ranges), closed (first, last, note), open (first, last, ranges, note), holidays (text = file)."""
    kind: str
    text: str | None = None
    days: list[DayRange] = field(default_factory=list)
    ranges: list[TimeRange] = field(default_factory=list)
    first: object = None  # datetime.date
    last: object = None
    note: str | None = None


@dataclass(kw_only=True)
class Hours(Decl):
    items: list[HoursItem]
    keyword = "hours"


@dataclass(kw_only=True)
class SkillNeed(Node):
    skill: str
    level: int | None = None


@dataclass(kw_only=True)
class Overflow(Node):
    kind: str  # voicemail | queue | callback | hangup
    target: str | None = None


@dataclass(kw_only=True)
class QueueItem(Node):
    """strategy, skills, priority, music, announce, max_wait, ring_timeout, wrapup, service_level."""
    key: str
    value: object = None
    value2: object = None


@dataclass(kw_only=True)
class Queue(Decl):
    items: list[QueueItem]
    keyword = "queue"


@dataclass(kw_only=True)
class AgentItem(Node):
    """extension, roles, skills (list of SkillNeed with a level), queues."""
    key: str
    value: object


@dataclass(kw_only=True)
class Agent(Decl):
    items: list[AgentItem]
    keyword = "agent"


@dataclass(kw_only=True)
class FlowEntry(Node):
    number: Expr


@dataclass(kw_only=True)
class FlowVar(Node):
    name: str
    type: TypeRef
    initial: Expr | None = None


@dataclass(kw_only=True)
class Flow(Decl):
    entries: list[FlowEntry]
    variables: list[FlowVar]
    body: list[Stmt]
    keyword = "flow"


@dataclass(kw_only=True)
class FieldOption(Node):
    """required, unique, default (value=expr), max (value=int), range (value, value2), label (value=text), renamed (value=name)."""
    key: str
    value: object = None
    value2: object = None


@dataclass(kw_only=True)
class FieldDecl(Node):
    name: str
    type: TypeRef
    options: list[FieldOption]


@dataclass(kw_only=True)
class Entity(Decl):
    fields: list[FieldDecl]
    keyword = "entity"


@dataclass(kw_only=True)
class FormField(Node):
    name: str
    readonly: bool = False
    when: Expr | None = None


@dataclass(kw_only=True)
class FormSection(Node):
    title: str
    when: Expr | None
    fields: list[FormField]


@dataclass(kw_only=True)
class Form(Decl):
    entity: str
    sections: list[FormSection]
    keyword = "form"


@dataclass(kw_only=True)
class ListItem(Node):
    """columns, filters, search (value=list of names), sort (value=name, value2=asc|desc)."""
    key: str
    value: object
    value2: object = None


@dataclass(kw_only=True)
class ListView(Decl):
    entity: str
    items: list[ListItem]
    keyword = "list"


@dataclass(kw_only=True)
class WorkflowAction(Node):
    kind: str  # assign | notify | set
    value: object  # Expr, or field name for set
    value2: object = None  # notify message, or Expr for set


@dataclass(kw_only=True)
class SlaRule(Node):
    kind: str  # escalate | notify | remind
    percent: Decimal | None = None
    who: object = None  # role name (escalate) or Expr (notify, remind)
    every_ms: int | None = None


@dataclass(kw_only=True)
class WorkflowItem(Node):
    """hours, state, transition or sla; the fields used depend on `kind`."""
    kind: str
    name: str
    title: str | None = None
    flags: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    dest: str | None = None
    roles: list[str] = field(default_factory=list)
    guard: Expr | None = None
    actions: list[WorkflowAction] = field(default_factory=list)
    duration_ms: int | None = None
    rules: list[SlaRule] = field(default_factory=list)
    # Where each state or role name in this item is written, for precise diagnostics.
    name_pos: dict[str, Pos] = field(default_factory=dict, compare=False)


@dataclass(kw_only=True)
class Workflow(Decl):
    entity: str
    items: list[WorkflowItem]
    keyword = "workflow"


@dataclass(kw_only=True)
class Permission(Node):
    access: list[str]
    entity: str
    where: Expr | None = None


@dataclass(kw_only=True)
class Role(Decl):
    permissions: list[Permission]
    keyword = "role"


@dataclass(kw_only=True)
class EvalItem(Node):
    name: str
    title: str | None
    points: int


@dataclass(kw_only=True)
class EvalPart(Node):
    name: str
    title: str | None
    not_for: list[str]
    items: list[EvalItem]


@dataclass(kw_only=True)
class Evaluation(Decl):
    call_types: list[EnumValue]
    parts: list[EvalPart]
    keyword = "evaluation"


Declaration = Union[Hours, Queue, Agent, Flow, Entity, Form, ListView, Workflow, Role, Evaluation]


@dataclass(kw_only=True)
class Module(Node):
    """One source file."""
    path: str
    imports: list[Import]
    declarations: list[Declaration]
