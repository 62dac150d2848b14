"""Makes the syntax tree of `dsl.ast` from the grammar's rules.

One method per grammar rule or alias; each receives the rule's position and its children (tokens
and the values the methods of the rules inside it returned), with `None` standing in for an
optional part that was left out.  The parser calls them as it reduces each rule
(`dsl.tree_building`), so the tree is built bottom-up without recursion and deeply nested input
cannot exhaust Python's stack.
"""
from __future__ import annotations

import datetime
from decimal import Decimal

from lark import Token

from dsl import ast
from dsl.literals import parse_duration, unquote


def token_pos(t: Token) -> ast.Pos:
    return ast.Pos(t.line, t.column, t.end_line, t.end_column)


def _text(token) -> str | None:
    return None if token is None else unquote(str(token))


def _names(items) -> list[str]:
    return [str(t) for t in items if t is not None]


class ToAst:
    # ---------------------------------------------------------- file
    def start(self, pos, items):
        imports = [i for i in items if isinstance(i, ast.Import)]
        decls = [i for i in items if not isinstance(i, ast.Import)]
        return ast.Module(pos=pos, path="", imports=imports, declarations=decls)

    def import_decl(self, pos, items):
        return ast.Import(pos=pos, path=_text(items[0]))

    # ---------------------------------------------------------- hours
    def hours_decl(self, pos, items):
        name, title, *body = items
        return ast.Hours(pos=pos, name=str(name), title=_text(title), items=body)

    def hours_timezone(self, pos, items):
        return ast.HoursItem(pos=pos, kind="timezone", text=_text(items[0]))

    def hours_weekly(self, pos, items):
        *days, ranges = items
        return ast.HoursItem(pos=pos, kind="weekly", days=days, ranges=ranges)

    def hours_closed(self, pos, items):
        (first, last), note = items
        return ast.HoursItem(pos=pos, kind="closed", first=first, last=last, note=_text(note))

    def hours_open(self, pos, items):
        (first, last), ranges, note = items
        return ast.HoursItem(pos=pos, kind="open", first=first, last=last, ranges=ranges, note=_text(note))

    def hours_holidays(self, pos, items):
        return ast.HoursItem(pos=pos, kind="holidays", text=_text(items[0]))

    def day_spec(self, pos, items):
        first, last = items
        return ast.DayRange(pos=pos, first=first, last=last)

    def day(self, pos, items):
        return str(items[0])

    def time_ranges(self, pos, items):
        return list(items)

    def time_range(self, pos, items):
        return ast.TimeRange(pos=pos, start=str(items[0]), end=str(items[1]))

    def date_span(self, pos, items):
        first, last = items
        return (_date(first), _date(last) if last is not None else None)

    # ---------------------------------------------------------- queues and agents
    def queue_decl(self, pos, items):
        name, title, *body = items
        return ast.Queue(pos=pos, name=str(name), title=_text(title), items=body)

    def _queue_item(self, pos, key, value=None, value2=None):
        return ast.QueueItem(pos=pos, key=key, value=value, value2=value2)

    def queue_strategy(self, pos, items):
        return self._queue_item(pos, "strategy", str(items[0]))

    def queue_skills(self, pos, items):
        return self._queue_item(pos, "skills", list(items))

    def skill_need(self, pos, items):
        skill, level = items
        return ast.SkillNeed(pos=pos, skill=str(skill), level=int(level) if level is not None else None)

    def queue_priority(self, pos, items):
        return self._queue_item(pos, "priority", int(items[0]))

    def queue_music(self, pos, items):
        return self._queue_item(pos, "music", _text(items[0]))

    def queue_announce(self, pos, items):
        return self._queue_item(pos, "announce", str(items[0]), parse_duration(items[1]))

    def queue_max_wait(self, pos, items):
        return self._queue_item(pos, "max_wait", parse_duration(items[0]), items[1])

    def queue_ring_timeout(self, pos, items):
        return self._queue_item(pos, "ring_timeout", parse_duration(items[0]))

    def queue_wrapup(self, pos, items):
        return self._queue_item(pos, "wrapup", parse_duration(items[0]))

    def queue_service_level(self, pos, items):
        return self._queue_item(pos, "service_level", _percent(items[0]), parse_duration(items[1]))

    def overflow_voicemail(self, pos, items):
        return ast.Overflow(pos=pos, kind="voicemail", target=_text(items[0]))

    def overflow_queue(self, pos, items):
        return ast.Overflow(pos=pos, kind="queue", target=str(items[0]))

    def overflow_callback(self, pos, items):
        return ast.Overflow(pos=pos, kind="callback")

    def overflow_hangup(self, pos, items):
        return ast.Overflow(pos=pos, kind="hangup")

    def agent_decl(self, pos, items):
        name, title, *body = items
        return ast.Agent(pos=pos, name=str(name), title=_text(title), items=body)

    def agent_extension(self, pos, items):
        return ast.AgentItem(pos=pos, key="extension", value=_text(items[0]))

    def agent_roles(self, pos, items):
        return ast.AgentItem(pos=pos, key="roles", value=_names(items))

    def agent_skills(self, pos, items):
        return ast.AgentItem(pos=pos, key="skills", value=list(items))

    def skill_level(self, pos, items):
        return ast.SkillNeed(pos=pos, skill=str(items[0]), level=int(items[1]))

    def agent_queues(self, pos, items):
        return ast.AgentItem(pos=pos, key="queues", value=_names(items))

    # ---------------------------------------------------------- flows
    def flow_decl(self, pos, items):
        name, title, *rest = items
        entries = [i for i in rest if isinstance(i, ast.FlowEntry)]
        variables = [i for i in rest if isinstance(i, ast.FlowVar)]
        body = [i for i in rest if isinstance(i, ast.Stmt)]
        return ast.Flow(pos=pos, name=str(name), title=_text(title),
                        entries=entries, variables=variables, body=body)

    def flow_entry(self, pos, items):
        return ast.FlowEntry(pos=pos, number=items[0])

    def flow_var(self, pos, items):
        name, type_ref, initial = items
        return ast.FlowVar(pos=pos, name=str(name), type=type_ref, initial=initial)

    def block(self, pos, items):
        return ast.Block(pos=pos, statements=list(items))

    def goto_target(self, pos, items):
        return ast.GotoTarget(pos=pos, label=str(items[0]))

    def statement(self, pos, items):
        label, stmt = items
        stmt.label = str(label) if label is not None else None
        stmt.pos = pos
        return stmt

    def answer(self, pos, items):
        return ast.Answer(pos=pos)

    def say(self, pos, items):
        return ast.Say(pos=pos, text=_text(items[0]))

    def play(self, pos, items):
        return ast.Play(pos=pos, sound=_text(items[0]))

    def menu(self, pos, items):
        return ast.Menu(pos=pos, items=list(items))

    def menu_prompt(self, pos, items):
        return ast.Setting(pos=pos, key="prompt", value=_text(items[0]))

    def menu_timeout(self, pos, items):
        return ast.Setting(pos=pos, key="timeout", value=parse_duration(items[0]))

    def menu_retries(self, pos, items):
        return ast.Setting(pos=pos, key="retries", value=int(items[0]))

    def dtmf_key(self, pos, items):
        token = items[0]
        return _text(token) if token.type == "STRING" else str(token)

    def menu_option(self, pos, items):
        key, title, target = items
        return ast.MenuOption(pos=pos, key=key, title=_text(title), target=target)

    def menu_event(self, pos, items):
        return str(items[0])

    def menu_on(self, pos, items):
        return ast.EventHandler(pos=pos, event=items[0], target=items[1])

    collect_on = menu_on
    collect_prompt = menu_prompt
    collect_timeout = menu_timeout
    collect_retries = menu_retries

    def collect(self, pos, items):
        var, type_name, *body = items
        return ast.Collect(pos=pos, var=str(var), type=str(type_name), items=body, ref_pos=token_pos(type_name))

    def collect_length(self, pos, items):
        low, high = items
        return ast.Setting(pos=pos, key="length", value=int(low),
                           value2=int(high) if high is not None else None)

    def collect_terminator(self, pos, items):
        return ast.Setting(pos=pos, key="terminator", value=_text(items[0]))

    def collect_valid(self, pos, items):
        return ast.Setting(pos=pos, key="valid", value=items[0])

    def set(self, pos, items):
        return ast.Set(pos=pos, target=items[0], value=items[1])

    def if_(self, pos, items):
        condition, target, *rest = items
        otherwise = rest.pop() if rest and not isinstance(rest[-1], ast.Branch) else None
        branches = [ast.Branch(pos=pos, condition=condition, target=target)] + rest
        return ast.If(pos=pos, branches=branches, otherwise=otherwise)

    def elif_clause(self, pos, items):
        return ast.Branch(pos=pos, condition=items[0], target=items[1])

    def else_clause(self, pos, items):
        return items[0]

    def switch(self, pos, items):
        subject, *rest = items
        otherwise = rest.pop() if rest and not isinstance(rest[-1], ast.Case) else None
        return ast.Switch(pos=pos, subject=subject, cases=rest, otherwise=otherwise)

    def case_clause(self, pos, items):
        *values, target = items
        return ast.Case(pos=pos, values=values, target=target)

    def lookup(self, pos, items):
        var, entity, where, otherwise = items
        return ast.Lookup(pos=pos, var=str(var), entity=str(entity), where=where, otherwise=otherwise,
                          ref_pos=token_pos(entity))

    def create(self, pos, items):
        var, entity, *fields = items
        return ast.Create(pos=pos, var=str(var) if var is not None else None, entity=str(entity),
                          fields=[f for f in fields if f is not None], ref_pos=token_pos(entity))

    def update(self, pos, items):
        target, *fields = items
        return ast.Update(pos=pos, target=target, fields=[f for f in fields if f is not None])

    def field_assign(self, pos, items):
        return ast.FieldAssign(pos=pos, name=str(items[0]), value=items[1])

    def http(self, pos, items):
        var, method, url, *settings, otherwise = items
        return ast.Http(pos=pos, var=str(var), method=str(method), url=url, items=settings,
                        otherwise=otherwise)

    def http_timeout(self, pos, items):
        return ast.Setting(pos=pos, key="timeout", value=parse_duration(items[0]))

    def http_header(self, pos, items):
        return ast.Setting(pos=pos, key="header", value=_text(items[0]), value2=items[1])

    def http_body(self, pos, items):
        return ast.Setting(pos=pos, key="body", value=items[0])

    def http_returns(self, pos, items):
        # A returned field spans its name and its type, so a comment after the type is its own.
        fields = [ast.HttpField(pos=ast.Pos(n.line, n.column, t.pos.end_line, t.pos.end_column), name=str(n), type=t)
                  for n, t in zip(items[::2], items[1::2])]
        return ast.Setting(pos=pos, key="returns", value=fields)

    def enqueue(self, pos, items):
        queue, *options = items
        stmt = ast.Enqueue(pos=pos, queue=str(queue), ref_pos=token_pos(queue))
        for key, value, value2 in options:
            if key == "priority":
                stmt.priority = value
            else:
                stmt.prefer, stmt.prefer_for_ms = value, value2
        return stmt

    def enqueue_priority(self, pos, items):
        return ("priority", int(items[0]), None)

    def enqueue_prefer(self, pos, items):
        return ("prefer", items[0], parse_duration(items[1]))

    def transfer_number(self, pos, items):
        return ast.TransferNumber(pos=pos, number=items[0])

    def transfer_agent(self, pos, items):
        agent, timeout, otherwise = items
        return ast.TransferAgent(pos=pos, agent=agent,
                                 timeout_ms=parse_duration(timeout) if timeout is not None else None,
                                 otherwise=otherwise)

    def voicemail(self, pos, items):
        return ast.Voicemail(pos=pos, box=_text(items[0]), callback=items[1] is not None)

    def record(self, pos, items):
        return ast.Record(pos=pos)

    def survey(self, pos, items):
        return ast.Survey(pos=pos, flow=str(items[0]), ref_pos=token_pos(items[0]))

    def goto(self, pos, items):
        return ast.Goto(pos=pos, target_label=str(items[0]), ref_pos=token_pos(items[0]))

    def subflow(self, pos, items):
        return ast.Subflow(pos=pos, flow=str(items[0]), ref_pos=token_pos(items[0]))

    def return_(self, pos, items):
        return ast.Return(pos=pos)

    def repeat(self, pos, items):
        return ast.Repeat(pos=pos)

    def hangup(self, pos, items):
        return ast.Hangup(pos=pos)

    # ---------------------------------------------------------- entities
    def entity_decl(self, pos, items):
        name, title, *fields = items
        return ast.Entity(pos=pos, name=str(name), title=_text(title), fields=fields)

    def field_decl(self, pos, items):
        name, type_ref, *options = items
        return ast.FieldDecl(pos=pos, name=str(name), type=type_ref, options=options)

    def simple_type(self, pos, items):
        return ast.TypeRef(pos=pos, kind="simple", name=str(items[0]))

    def enum_type(self, pos, items):
        return ast.TypeRef(pos=pos, kind="enum", values=list(items))

    def enum_value(self, pos, items):
        name, label = items
        return ast.EnumValue(pos=pos, name=str(name), label=_text(label))

    def ref_type(self, pos, items):
        return ast.TypeRef(pos=pos, kind="ref", name=str(items[0]))

    def list_type(self, pos, items):
        return ast.TypeRef(pos=pos, kind="list", name=str(items[0]))

    def _option(self, pos, key, value=None, value2=None):
        return ast.FieldOption(pos=pos, key=key, value=value, value2=value2)

    def opt_required(self, pos, items):
        return self._option(pos, "required")

    def opt_unique(self, pos, items):
        return self._option(pos, "unique")

    def opt_default(self, pos, items):
        return self._option(pos, "default", items[0])

    def opt_max_length(self, pos, items):
        return self._option(pos, "max", int(items[0]))

    def opt_range(self, pos, items):
        return self._option(pos, "range", Decimal(str(items[0])), Decimal(str(items[1])))

    def opt_label(self, pos, items):
        return self._option(pos, "label", _text(items[0]))

    def opt_renamed(self, pos, items):
        return self._option(pos, "renamed", str(items[0]))

    # ---------------------------------------------------------- forms and lists
    def form_decl(self, pos, items):
        name, entity, title, *sections = items
        return ast.Form(pos=pos, name=str(name), entity=str(entity), title=_text(title), sections=sections,
                        ref_pos=token_pos(entity))

    def form_section(self, pos, items):
        title, when, *fields = items
        return ast.FormSection(pos=pos, title=_text(title), when=when,
                               fields=[f for f in fields if f is not None])

    def form_field(self, pos, items):
        name, *options = items
        field = ast.FormField(pos=pos, name=str(name))
        for key, value in options:
            if key == "readonly":
                field.readonly = True
            else:
                field.when = value
        return field

    def field_readonly(self, pos, items):
        return ("readonly", None)

    def field_when(self, pos, items):
        return ("when", items[0])

    def list_decl(self, pos, items):
        name, entity, title, *body = items
        return ast.ListView(pos=pos, name=str(name), entity=str(entity), title=_text(title), items=body,
                            ref_pos=token_pos(entity))

    def list_columns(self, pos, items):
        return ast.ListItem(pos=pos, key="columns", value=_names(items))

    def list_filters(self, pos, items):
        return ast.ListItem(pos=pos, key="filters", value=_names(items))

    def list_search(self, pos, items):
        return ast.ListItem(pos=pos, key="search", value=_names(items))

    def list_sort(self, pos, items):
        name, order = items
        return ast.ListItem(pos=pos, key="sort", value=str(name), value2=order or "asc")

    def sort_order(self, pos, items):
        return str(items[0])

    # ---------------------------------------------------------- workflows
    def workflow_decl(self, pos, items):
        name, entity, title, *body = items
        return ast.Workflow(pos=pos, name=str(name), entity=str(entity), title=_text(title), items=body,
                            ref_pos=token_pos(entity))

    def workflow_hours(self, pos, items):
        return ast.WorkflowItem(pos=pos, kind="hours", name=str(items[0]),
                                name_pos={str(items[0]): token_pos(items[0])})

    def workflow_state(self, pos, items):
        # Flags may stand before or after the title (`state waiting "等待客户" paused`).
        name, *rest = items
        title = next((t for t in rest if isinstance(t, Token)), None)
        flags = [f for f in rest if not isinstance(f, Token)]
        return ast.WorkflowItem(pos=pos, kind="state", name=str(name), title=_text(title), flags=flags)

    def state_flag(self, pos, items):
        return str(items[0])

    def workflow_transition(self, pos, items):
        name, title, sources, dest, roles, guard, actions = items
        return ast.WorkflowItem(pos=pos, kind="transition", name=str(name), title=_text(title),
                                sources=list(sources), dest=str(dest), roles=list(roles or []), guard=guard,
                                actions=actions or [],
                                name_pos=_positions([*sources.tokens, dest, *(roles.tokens if roles else [])]))

    def names(self, pos, items):
        return _Names(items)

    fired_by = names

    def guard(self, pos, items):
        return items[0]

    def actions(self, pos, items):
        return list(items)

    sla_rules = actions

    def action_assign(self, pos, items):
        return ast.WorkflowAction(pos=pos, kind="assign", value=items[0])

    def action_notify(self, pos, items):
        return ast.WorkflowAction(pos=pos, kind="notify", value=items[0], value2=_text(items[1]))

    def action_set(self, pos, items):
        return ast.WorkflowAction(pos=pos, kind="set", value=str(items[0]), value2=items[1])

    def workflow_sla(self, pos, items):
        name, duration, start, stops, rules = items
        return ast.WorkflowItem(pos=pos, kind="sla", name=str(name), duration_ms=parse_duration(duration),
                                sources=[str(start)], flags=list(stops), rules=rules or [],
                                name_pos=_positions([start, *stops.tokens]))

    def sla_escalate(self, pos, items):
        return ast.SlaRule(pos=pos, kind="escalate", percent=_percent(items[0]), who=str(items[1]))

    def sla_notify(self, pos, items):
        return ast.SlaRule(pos=pos, kind="notify", percent=_percent(items[0]), who=items[1])

    def sla_remind(self, pos, items):
        return ast.SlaRule(pos=pos, kind="remind", who=items[0], every_ms=parse_duration(items[1]))

    # ---------------------------------------------------------- roles and evaluations
    def role_decl(self, pos, items):
        name, title, *permissions = items
        return ast.Role(pos=pos, name=str(name), title=_text(title), permissions=permissions)

    def permission(self, pos, items):
        *access, entity, where = items
        return ast.Permission(pos=pos, access=access, entity=str(entity), where=where)

    def access(self, pos, items):
        return str(items[0])

    def evaluation_decl(self, pos, items):
        name, title, call_types, *parts = items
        return ast.Evaluation(pos=pos, name=str(name), title=_text(title), call_types=call_types,
                              parts=parts)

    def call_types(self, pos, items):
        return list(items)

    def eval_part(self, pos, items):
        name, title, not_for, *parts = items
        return ast.EvalPart(pos=pos, name=str(name), title=_text(title), not_for=list(not_for or []), items=parts)

    not_for = names

    def eval_item(self, pos, items):
        name, title, points = items
        return ast.EvalItem(pos=pos, name=str(name), title=_text(title), points=int(points))

    # ---------------------------------------------------------- expressions
    def string(self, pos, items):
        return ast.Literal(pos=pos, kind="text", value=_text(items[0]))

    def number_lit(self, pos, items):
        return ast.Literal(pos=pos, kind="number", value=Decimal(str(items[0])))

    def duration_lit(self, pos, items):
        return ast.Literal(pos=pos, kind="duration", value=parse_duration(items[0]))

    def date_lit(self, pos, items):
        return ast.Literal(pos=pos, kind="date", value=_date(items[0]))

    def true_lit(self, pos, items):
        return ast.Literal(pos=pos, kind="bool", value=True)

    def false_lit(self, pos, items):
        return ast.Literal(pos=pos, kind="bool", value=False)

    def none_lit(self, pos, items):
        return ast.Literal(pos=pos, kind="none", value=None)

    def call(self, pos, items):
        name, *args = items
        return ast.Call(pos=pos, name=str(name), args=[a for a in args if a is not None])

    def ref(self, pos, items):
        return ast.Ref(pos=pos, parts=[str(t) for t in items])

    def or_(self, pos, items):
        return _fold("or", items)

    def and_(self, pos, items):
        return _fold("and", items)

    def not_(self, pos, items):
        return ast.Not(pos=pos, operand=items[0])

    def compare(self, pos, items):
        return ast.Binary(pos=pos, op=str(items[1]), left=items[0], right=items[2])

    def arith(self, pos, items):
        return ast.Binary(pos=pos, op=str(items[1]), left=items[0], right=items[2])

    def in_(self, pos, items):
        return ast.In(pos=pos, subject=items[0], options=list(items[1:]))

    def not_in(self, pos, items):
        return ast.In(pos=pos, subject=items[0], options=list(items[1:]), negated=True)


class _Names(list):
    """Names as strings that remember their tokens (for positions)."""

    def __init__(self, tokens):
        super().__init__(str(t) for t in tokens if t is not None)
        self.tokens = [t for t in tokens if t is not None]


def _positions(tokens) -> dict[str, ast.Pos]:
    out: dict[str, ast.Pos] = {}
    for t in tokens:
        out.setdefault(str(t), token_pos(t))
    return out


def _fold(op, items):
    result = items[0]
    for item in items[1:]:
        result = ast.Binary(pos=ast.Pos(result.pos.line, result.pos.column, item.pos.end_line, item.pos.end_column),
                            op=op, left=result, right=item)
    return result


def _date(token) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(str(token))
    except ValueError:
        # Reported by the compiler's checks with the position; keep the text so nothing is lost.
        return str(token)


def _percent(token) -> Decimal:
    return Decimal(str(token).rstrip("%"))
