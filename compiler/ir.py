"""The compiled form of a project: pydantic models that the runtime and the studio execute.

These types are the single source of truth for the bundle's JSON (validation, serialization and
the JSON Schema in docs/bundle.schema.json).  Everything is resolved: names point at things that
exist, environment symbols are replaced by their values, durations are milliseconds, and flows are
flat state machines whose steps name the step that comes next.

Types of values are written as strings: `text`, `number`, `money`, `bool`, `date`, `datetime`,
`phone`, `email`, `duration`, `none`, `enum:Entity.field` (or `enum:flow.var`), `record:Entity`,
`list:Entity`, `agent`, `object` (an HTTP reply, see `HttpStep.returns`).
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = 1


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ expressions

class Const(Model):
    kind: Literal["const"] = "const"
    type: str
    value: str | int | bool | None  # money and number as decimal text, dates as ISO text


class Var(Model):
    """A variable or a field of a record variable: `customer.tier` is path ["customer", "tier"]."""
    kind: Literal["var"] = "var"
    type: str
    path: list[str]


class Op(Model):
    """`not`, `and`, `or`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `+`, `-`, `*`, `/`, `in`, `not in`.
    For `in`, the first argument is the subject and the rest the options."""
    kind: Literal["op"] = "op"
    type: str
    op: str
    args: list["Expr"]


class Fn(Model):
    """A built-in function, e.g. `open(office)` (args: Const hours name), `len(x)`."""
    kind: Literal["call"] = "call"
    type: str
    name: str
    args: list["Expr"]


Expr = Annotated[Union[Const, Var, Op, Fn], Field(discriminator="kind")]


class TextPart(Model):
    """Part of a prompt: plain text, or an expression spoken in its place (`{customer.name}`)."""
    text: str | None = None
    expr: Expr | None = None


# ------------------------------------------------------------------ flow steps

class StepBase(Model):
    id: str
    # Where a step goes when it is done; None for steps that end the flow or always branch.
    next: str | None = None


class AnswerStep(StepBase):
    kind: Literal["answer"] = "answer"


class SayStep(StepBase):
    kind: Literal["say"] = "say"
    text: list[TextPart]


class PlayStep(StepBase):
    kind: Literal["play"] = "play"
    sound: str


class MenuOption(Model):
    key: str
    title: str | None = None
    goto: str


class MenuStep(StepBase):
    """Plays the prompt and waits for one key.  Each timeout or invalid key counts as a try; the
    handler runs (its default is to repeat the menu) until `retries` further tries are used,
    then the call goes to `on_failure`."""
    kind: Literal["menu"] = "menu"
    prompt: list[TextPart]
    timeout_ms: int
    retries: int
    options: list[MenuOption]
    on_timeout: str | None = None
    on_invalid: str | None = None
    on_failure: str


class CollectStep(StepBase):
    """Collects digits into `var` of type `digits`, `phone`, `card`, `amount`, `date` or `number`."""
    kind: Literal["collect"] = "collect"
    var: str
    digit_type: str
    prompt: list[TextPart]
    min_length: int
    max_length: int
    terminator: str
    timeout_ms: int
    retries: int
    valid: Expr | None = None
    on_timeout: str | None = None
    on_invalid: str | None = None
    on_failure: str


class RepeatStep(StepBase):
    """Back to `menu` (a menu or collect step) for another try."""
    kind: Literal["repeat"] = "repeat"
    menu: str


class SetStep(StepBase):
    kind: Literal["set"] = "set"
    path: list[str]
    value: Expr


class Condition(Model):
    when: Expr
    goto: str


class BranchStep(StepBase):
    """`if`/`elif`/`else`: the first condition that holds decides; otherwise `next`."""
    kind: Literal["branch"] = "branch"
    conditions: list[Condition]


class SwitchCase(Model):
    values: list[Expr]
    goto: str


class SwitchStep(StepBase):
    kind: Literal["switch"] = "switch"
    subject: Expr
    cases: list[SwitchCase]


class LookupStep(StepBase):
    """Finds one record of `entity` where the condition holds (fields by bare name); `next` when
    found, `not_found` otherwise (the variable is then none)."""
    kind: Literal["lookup"] = "lookup"
    var: str
    entity: str
    where: Expr
    not_found: str


class CreateStep(StepBase):
    kind: Literal["create"] = "create"
    var: str | None = None
    entity: str
    fields: dict[str, Expr]


class UpdateStep(StepBase):
    kind: Literal["update"] = "update"
    var: str
    entity: str
    fields: dict[str, Expr]


class HttpHeader(Model):
    name: str
    value: Expr


class HttpStep(StepBase):
    """Calls an outside system; on a reply that is not 2xx, a timeout, or a reply that does not
    carry the typed `returns` fields, the call goes to `on_error`."""
    kind: Literal["http"] = "http"
    var: str
    method: str
    url: Expr
    timeout_ms: int
    headers: list[HttpHeader] = []
    body: Expr | None = None
    returns: dict[str, str] = {}
    on_error: str


class EnqueueStep(StepBase):
    kind: Literal["enqueue"] = "enqueue"
    queue: str
    priority: int
    prefer: Expr | None = None
    prefer_for_ms: int = 0


class TransferNumberStep(StepBase):
    kind: Literal["transfer_number"] = "transfer_number"
    number: Expr


class TransferAgentStep(StepBase):
    """Rings one agent; if nobody answers within `timeout_ms`, `on_no_answer`."""
    kind: Literal["transfer_agent"] = "transfer_agent"
    agent: Expr
    timeout_ms: int
    on_no_answer: str


class VoicemailStep(StepBase):
    kind: Literal["voicemail"] = "voicemail"
    box: str
    callback: bool = False


class RecordStep(StepBase):
    kind: Literal["record"] = "record"


class SurveyStep(StepBase):
    """Arms the survey: when the agent leaves the call, the caller continues in flow `flow`."""
    kind: Literal["survey"] = "survey"
    flow: str


class SubflowStep(StepBase):
    """Runs flow `flow` and comes back to `next` at its `return`."""
    kind: Literal["subflow"] = "subflow"
    flow: str


class ReturnStep(StepBase):
    kind: Literal["return"] = "return"


class HangupStep(StepBase):
    kind: Literal["hangup"] = "hangup"


Step = Annotated[
    Union[AnswerStep, SayStep, PlayStep, MenuStep, CollectStep, RepeatStep, SetStep, BranchStep, SwitchStep,
          LookupStep, CreateStep, UpdateStep, HttpStep, EnqueueStep, TransferNumberStep, TransferAgentStep,
          VoicemailStep, RecordStep, SurveyStep, SubflowStep, ReturnStep, HangupStep],
    Field(discriminator="kind"),
]

# Steps after which the flow has handed the call on or ended it.
ENDING_KINDS = {"hangup", "enqueue", "transfer_number", "voicemail", "return"}


class Variable(Model):
    type: str
    initial: Expr | None = None
    # Ids of the steps that give the variable a value.
    set_at: list[str] = []


class Flow(Model):
    name: str
    title: str | None = None
    entries: list[str] = []  # dialled numbers, resolved for the environment
    start: str
    variables: dict[str, Variable] = {}
    steps: list[Step]


# ------------------------------------------------------------------ time

class TimeRange(Model):
    start: str  # "08:00"
    end: str    # "20:00", "24:00" for the end of the day


class DateSpan(Model):
    first: str  # ISO date
    last: str
    note: str | None = None
    ranges: list[TimeRange] = []  # opening hours on a special open day; empty when closed


class Hours(Model):
    name: str
    title: str | None = None
    timezone: str
    weekly: dict[str, list[TimeRange]]  # "mon".."sun"
    closed: list[DateSpan] = []
    open: list[DateSpan] = []


# ------------------------------------------------------------------ ACD

class SkillNeed(Model):
    skill: str
    min_level: int = 1


class Overflow(Model):
    kind: Literal["voicemail", "queue", "callback", "hangup"]
    target: str | None = None


class ServiceLevel(Model):
    percent: float
    within_ms: int


class Queue(Model):
    name: str
    title: str | None = None
    strategy: Literal["longest_idle", "fewest_calls", "round_robin", "skills", "preferred"]
    skills: list[SkillNeed] = []
    priority: int = 0
    music: str = "default"
    announce_position_ms: int | None = None
    announce_wait_ms: int | None = None
    max_wait_ms: int | None = None
    overflow: Overflow | None = None
    ring_timeout_ms: int = 15_000
    wrapup_ms: int = 0
    service_level: ServiceLevel = ServiceLevel(percent=80, within_ms=20_000)


class Agent(Model):
    name: str
    title: str | None = None
    extension: str | None = None
    roles: list[str] = []
    skills: dict[str, int] = {}
    queues: list[str] = []


# ------------------------------------------------------------------ CRM

class EnumChoice(Model):
    name: str
    label: str | None = None


class EntityField(Model):
    name: str
    type: str  # text number money bool date datetime phone email enum ref list agent
    label: str | None = None
    choices: list[EnumChoice] = []  # for enum
    target: str | None = None       # entity for ref and list
    required: bool = False
    unique: bool = False
    default: str | int | bool | None = None
    max_length: int | None = None
    minimum: str | None = None
    maximum: str | None = None
    renamed_from: str | None = None


class Entity(Model):
    name: str
    title: str | None = None
    fields: list[EntityField]
    workflow: str | None = None


class FormField(Model):
    name: str
    readonly: bool = False
    when: Expr | None = None


class FormSection(Model):
    title: str
    when: Expr | None = None
    fields: list[FormField]


class Form(Model):
    name: str
    entity: str
    title: str | None = None
    sections: list[FormSection]


class SortOrder(Model):
    field: str
    order: Literal["asc", "desc"] = "asc"


class ListView(Model):
    name: str
    entity: str
    title: str | None = None
    columns: list[str]
    filters: list[str] = []
    search: list[str] = []
    sort: SortOrder | None = None


class WorkflowState(Model):
    name: str
    title: str | None = None
    initial: bool = False
    final: bool = False
    paused: bool = False


class WorkflowAction(Model):
    kind: Literal["assign", "notify", "set"]
    value: Expr | None = None
    field: str | None = None
    message: str | None = None


class Transition(Model):
    name: str
    title: str | None = None
    sources: list[str]
    dest: str
    roles: list[str] = []  # empty: anyone who may update the record
    guard: Expr | None = None
    actions: list[WorkflowAction] = []


class SlaRule(Model):
    kind: Literal["escalate", "notify", "remind"]
    percent: float | None = None
    role: str | None = None
    who: Expr | None = None
    every_ms: int | None = None


class Sla(Model):
    """A clock that starts on entering `start`, stops on reaching one of `stops`, counts only the
    workflow's business hours and stands still in paused states."""
    name: str
    duration_ms: int
    start: str
    stops: list[str]
    rules: list[SlaRule] = []


class Workflow(Model):
    name: str
    entity: str
    title: str | None = None
    hours: str | None = None
    states: list[WorkflowState]
    transitions: list[Transition]
    slas: list[Sla] = []


class Permission(Model):
    access: list[Literal["read", "create", "update", "delete"]]
    entity: str
    where: Expr | None = None


class Role(Model):
    name: str
    title: str | None = None
    permissions: list[Permission]


class EvalItem(Model):
    name: str
    title: str | None = None
    points: int


class EvalPart(Model):
    name: str
    title: str | None = None
    not_for: list[str] = []
    items: list[EvalItem]


class Evaluation(Model):
    name: str
    title: str | None = None
    call_types: list[EnumChoice]
    parts: list[EvalPart]


# ------------------------------------------------------------------ the bundle

class Bundle(Model):
    format: int = FORMAT_VERSION
    environment: str
    # sha256 of the canonical JSON of everything else; identical input gives an identical hash.
    hash: str = ""
    numbers: dict[str, str] = {}  # dialled number -> flow
    hours: dict[str, Hours] = {}
    queues: dict[str, Queue] = {}
    agents: dict[str, Agent] = {}
    flows: dict[str, Flow] = {}
    entities: dict[str, Entity] = {}
    forms: dict[str, Form] = {}
    lists: dict[str, ListView] = {}
    workflows: dict[str, Workflow] = {}
    roles: dict[str, Role] = {}
    evaluations: dict[str, Evaluation] = {}
