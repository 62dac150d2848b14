"""Turns lark's parse tree into the syntax tree of `dsl.ast`.

One method per grammar alias; each receives the rule's `meta` (its position) and its children,
with `None` standing in for an optional part that was left out.  `ToAst.transform` walks the tree
bottom-up without recursion, so deeply nested input cannot exhaust Python's stack, and calls the
methods directly, which is several times faster than lark's generic Transformer.
"""
from __future__ import annotations

import datetime
from decimal import Decimal

from lark import Token, Tree

from dsl import ast
from dsl.literals import parse_duration, unquote


def pos_of(meta_or_token) -> ast.Pos:
    if isinstance(meta_or_token, Token):
        t = meta_or_token
        return ast.Pos(t.line, t.column, t.end_line, t.end_column)
    m = meta_or_token
    if getattr(m, "empty", True):
        return ast.NOWHERE
    return ast.Pos(m.line, m.column, m.end_line, m.end_column)


def _text(token) -> str | None:
    return None if token is None else unquote(str(token))


def _names(items) -> list[str]:
    return [str(t) for t in items if t is not None]


class ToAst:
    def transform(self, tree: Tree):
        """Post-order walk: each node's method runs after its children have been built."""
        methods: dict[str, object] = {}
        results: list = []
        stack: list = [(tree, False)]
        while stack:
            node, expanded = stack.pop()
            if not isinstance(node, Tree):
                results.append(node)
            elif expanded:
                count = len(node.children)
                children = results[len(results) - count:] if count else []
                del results[len(results) - count:]
                method = methods.get(node.data)
                if method is None:
                    method = methods[node.data] = getattr(self, node.data)
                results.append(method(node.meta, children))
            else:
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(node.children))
        return results[0]

    # ---------------------------------------------------------- file
    def start(self, meta, items):
        imports = [i for i in items if isinstance(i, ast.Import)]
        decls = [i for i in items if not isinstance(i, ast.Import)]
        return ast.Module(pos=pos_of(meta), path="", imports=imports, declarations=decls)

    def import_decl(self, meta, items):
        return ast.Import(pos=pos_of(meta), path=_text(items[0]))

    # ---------------------------------------------------------- hours
    def hours_decl(self, meta, items):
        name, title, *body = items
        return ast.Hours(pos=pos_of(meta), name=str(name), title=_text(title), items=body)

    def hours_timezone(self, meta, items):
        return ast.HoursItem(pos=pos_of(meta), kind="timezone", text=_text(items[0]))

    def hours_weekly(self, meta, items):
        *days, ranges = items
        return ast.HoursItem(pos=pos_of(meta), kind="weekly", days=days, ranges=ranges)

    def hours_closed(self, meta, items):
        (first, last), note = items
        return ast.HoursItem(pos=pos_of(meta), kind="closed", first=first, last=last, note=_text(note))

    def hours_open(self, meta, items):
        (first, last), ranges, note = items
        return ast.HoursItem(pos=pos_of(meta), kind="open", first=first, last=last, ranges=ranges, note=_text(note))

    def hours_holidays(self, meta, items):
        return ast.HoursItem(pos=pos_of(meta), kind="holidays", text=_text(items[0]))

    def day_spec(self, meta, items):
        first, last = items
        return ast.DayRange(pos=pos_of(meta), first=first, last=last)

    def day(self, meta, items):
        return str(items[0])

    def time_ranges(self, meta, items):
        return list(items)

    def time_range(self, meta, items):
        return ast.TimeRange(pos=pos_of(meta), start=str(items[0]), end=str(items[1]))

    def date_span(self, meta, items):
        first, last = items
        return (_date(first), _date(last) if last is not None else None)

    # ---------------------------------------------------------- queues and agents
    def queue_decl(self, meta, items):
        name, title, *body = items
        return ast.Queue(pos=pos_of(meta), name=str(name), title=_text(title), items=body)

    def _queue_item(self, meta, key, value=None, value2=None):
        return ast.QueueItem(pos=pos_of(meta), key=key, value=value, value2=value2)

    def queue_strategy(self, meta, items):
        return self._queue_item(meta, "strategy", str(items[0]))

    def queue_skills(self, meta, items):
        return self._queue_item(meta, "skills", list(items))

    def skill_need(self, meta, items):
        skill, level = items
        return ast.SkillNeed(pos=pos_of(meta), skill=str(skill), level=int(level) if level is not None else None)

    def queue_priority(self, meta, items):
        return self._queue_item(meta, "priority", int(items[0]))

    def queue_music(self, meta, items):
        return self._queue_item(meta, "music", _text(items[0]))

    def queue_announce(self, meta, items):
        return self._queue_item(meta, "announce", str(items[0]), parse_duration(items[1]))

    def queue_max_wait(self, meta, items):
        return self._queue_item(meta, "max_wait", parse_duration(items[0]), items[1])

    def queue_ring_timeout(self, meta, items):
        return self._queue_item(meta, "ring_timeout", parse_duration(items[0]))

    def queue_wrapup(self, meta, items):
        return self._queue_item(meta, "wrapup", parse_duration(items[0]))

    def queue_service_level(self, meta, items):
        return self._queue_item(meta, "service_level", _percent(items[0]), parse_duration(items[1]))

    def overflow_voicemail(self, meta, items):
        return ast.Overflow(pos=pos_of(meta), kind="voicemail", target=_text(items[0]))

    def overflow_queue(self, meta, items):
        return ast.Overflow(pos=pos_of(meta), kind="queue", target=str(items[0]))

    def overflow_callback(self, meta, items):
        return ast.Overflow(pos=pos_of(meta), kind="callback")

    def overflow_hangup(self, meta, items):
        return ast.Overflow(pos=pos_of(meta), kind="hangup")

    def agent_decl(self, meta, items):
        name, title, *body = items
        return ast.Agent(pos=pos_of(meta), name=str(name), title=_text(title), items=body)

    def agent_extension(self, meta, items):
        return ast.AgentItem(pos=pos_of(meta), key="extension", value=_text(items[0]))

    def agent_roles(self, meta, items):
        return ast.AgentItem(pos=pos_of(meta), key="roles", value=_names(items))

    def agent_skills(self, meta, items):
        return ast.AgentItem(pos=pos_of(meta), key="skills", value=list(items))

    def skill_level(self, meta, items):
        return ast.SkillNeed(pos=pos_of(meta), skill=str(items[0]), level=int(items[1]))

    def agent_queues(self, meta, items):
        return ast.AgentItem(pos=pos_of(meta), key="queues", value=_names(items))

    # ---------------------------------------------------------- flows
    def flow_decl(self, meta, items):
        name, title, *rest = items
        entries = [i for i in rest if isinstance(i, ast.FlowEntry)]
        variables = [i for i in rest if isinstance(i, ast.FlowVar)]
        body = [i for i in rest if isinstance(i, ast.Stmt)]
        return ast.Flow(pos=pos_of(meta), name=str(name), title=_text(title),
                        entries=entries, variables=variables, body=body)

    def flow_entry(self, meta, items):
        return ast.FlowEntry(pos=pos_of(meta), number=items[0])

    def flow_var(self, meta, items):
        name, type_ref, initial = items
        return ast.FlowVar(pos=pos_of(meta), name=str(name), type=type_ref, initial=initial)

    def block(self, meta, items):
        return ast.Block(pos=pos_of(meta), statements=list(items))

    def goto_target(self, meta, items):
        return ast.GotoTarget(pos=pos_of(meta), label=str(items[0]))

    def statement(self, meta, items):
        label, stmt = items
        stmt.label = str(label) if label is not None else None
        stmt.pos = pos_of(meta)
        return stmt

    def answer(self, meta, items):
        return ast.Answer(pos=pos_of(meta))

    def say(self, meta, items):
        return ast.Say(pos=pos_of(meta), text=_text(items[0]))

    def play(self, meta, items):
        return ast.Play(pos=pos_of(meta), sound=_text(items[0]))

    def menu(self, meta, items):
        return ast.Menu(pos=pos_of(meta), items=list(items))

    def menu_prompt(self, meta, items):
        return ast.Setting(pos=pos_of(meta), key="prompt", value=_text(items[0]))

    def menu_timeout(self, meta, items):
        return ast.Setting(pos=pos_of(meta), key="timeout", value=parse_duration(items[0]))

    def menu_retries(self, meta, items):
        return ast.Setting(pos=pos_of(meta), key="retries", value=int(items[0]))

    def dtmf_key(self, meta, items):
        token = items[0]
        return _text(token) if token.type == "STRING" else str(token)

    def menu_option(self, meta, items):
        key, title, target = items
        return ast.MenuOption(pos=pos_of(meta), key=key, title=_text(title), target=target)

    def menu_event(self, meta, items):
        return str(items[0])

    def menu_on(self, meta, items):
        return ast.EventHandler(pos=pos_of(meta), event=items[0], target=items[1])

    collect_on = menu_on
    collect_prompt = menu_prompt
    collect_timeout = menu_timeout
    collect_retries = menu_retries

    def collect(self, meta, items):
        var, type_name, *body = items
        return ast.Collect(pos=pos_of(meta), var=str(var), type=str(type_name), items=body, ref_pos=pos_of(type_name))

    def collect_length(self, meta, items):
        low, high = items
        return ast.Setting(pos=pos_of(meta), key="length", value=int(low),
                           value2=int(high) if high is not None else None)

    def collect_terminator(self, meta, items):
        return ast.Setting(pos=pos_of(meta), key="terminator", value=_text(items[0]))

    def collect_valid(self, meta, items):
        return ast.Setting(pos=pos_of(meta), key="valid", value=items[0])

    def set(self, meta, items):
        return ast.Set(pos=pos_of(meta), target=items[0], value=items[1])

    def if_(self, meta, items):
        condition, target, *rest = items
        otherwise = rest.pop() if rest and not isinstance(rest[-1], ast.Branch) else None
        branches = [ast.Branch(pos=pos_of(meta), condition=condition, target=target)] + rest
        return ast.If(pos=pos_of(meta), branches=branches, otherwise=otherwise)

    def elif_clause(self, meta, items):
        return ast.Branch(pos=pos_of(meta), condition=items[0], target=items[1])

    def else_clause(self, meta, items):
        return items[0]

    def switch(self, meta, items):
        subject, *rest = items
        otherwise = rest.pop() if rest and not isinstance(rest[-1], ast.Case) else None
        return ast.Switch(pos=pos_of(meta), subject=subject, cases=rest, otherwise=otherwise)

    def case_clause(self, meta, items):
        *values, target = items
        return ast.Case(pos=pos_of(meta), values=values, target=target)

    def lookup(self, meta, items):
        var, entity, where, otherwise = items
        return ast.Lookup(pos=pos_of(meta), var=str(var), entity=str(entity), where=where, otherwise=otherwise,
                          ref_pos=pos_of(entity))

    def create(self, meta, items):
        var, entity, *fields = items
        return ast.Create(pos=pos_of(meta), var=str(var) if var is not None else None, entity=str(entity),
                          fields=[f for f in fields if f is not None], ref_pos=pos_of(entity))

    def update(self, meta, items):
        target, *fields = items
        return ast.Update(pos=pos_of(meta), target=target, fields=[f for f in fields if f is not None])

    def field_assign(self, meta, items):
        return ast.FieldAssign(pos=pos_of(meta), name=str(items[0]), value=items[1])

    def http(self, meta, items):
        var, method, url, *settings, otherwise = items
        return ast.Http(pos=pos_of(meta), var=str(var), method=str(method), url=url, items=settings,
                        otherwise=otherwise)

    def http_timeout(self, meta, items):
        return ast.Setting(pos=pos_of(meta), key="timeout", value=parse_duration(items[0]))

    def http_header(self, meta, items):
        return ast.Setting(pos=pos_of(meta), key="header", value=_text(items[0]), value2=items[1])

    def http_body(self, meta, items):
        return ast.Setting(pos=pos_of(meta), key="body", value=items[0])

    def http_returns(self, meta, items):
        # A returned field spans its name and its type, so a comment after the type is its own.
        fields = [ast.HttpField(pos=ast.Pos(n.line, n.column, t.pos.end_line, t.pos.end_column), name=str(n), type=t)
                  for n, t in zip(items[::2], items[1::2])]
        return ast.Setting(pos=pos_of(meta), key="returns", value=fields)

    def enqueue(self, meta, items):
        queue, *options = items
        stmt = ast.Enqueue(pos=pos_of(meta), queue=str(queue), ref_pos=pos_of(queue))
        for key, value, value2 in options:
            if key == "priority":
                stmt.priority = value
            else:
                stmt.prefer, stmt.prefer_for_ms = value, value2
        return stmt

    def enqueue_priority(self, meta, items):
        return ("priority", int(items[0]), None)

    def enqueue_prefer(self, meta, items):
        return ("prefer", items[0], parse_duration(items[1]))

    def transfer_number(self, meta, items):
        return ast.TransferNumber(pos=pos_of(meta), number=items[0])

    def transfer_agent(self, meta, items):
        agent, timeout, otherwise = items
        return ast.TransferAgent(pos=pos_of(meta), agent=agent,
                                 timeout_ms=parse_duration(timeout) if timeout is not None else None,
                                 otherwise=otherwise)

    def voicemail(self, meta, items):
        return ast.Voicemail(pos=pos_of(meta), box=_text(items[0]), callback=items[1] is not None)

    def record(self, meta, items):
        return ast.Record(pos=pos_of(meta))

    def survey(self, meta, items):
        return ast.Survey(pos=pos_of(meta), flow=str(items[0]), ref_pos=pos_of(items[0]))

    def goto(self, meta, items):
        return ast.Goto(pos=pos_of(meta), target_label=str(items[0]), ref_pos=pos_of(items[0]))

    def subflow(self, meta, items):
        return ast.Subflow(pos=pos_of(meta), flow=str(items[0]), ref_pos=pos_of(items[0]))

    def return_(self, meta, items):
        return ast.Return(pos=pos_of(meta))

    def repeat(self, meta, items):
        return ast.Repeat(pos=pos_of(meta))

    def hangup(self, meta, items):
        return ast.Hangup(pos=pos_of(meta))

    # ---------------------------------------------------------- entities
    def entity_decl(self, meta, items):
        name, title, *fields = items
        return ast.Entity(pos=pos_of(meta), name=str(name), title=_text(title), fields=fields)

    def field_decl(self, meta, items):
        name, type_ref, *options = items
        return ast.FieldDecl(pos=pos_of(meta), name=str(name), type=type_ref, options=options)

    def simple_type(self, meta, items):
        return ast.TypeRef(pos=pos_of(meta), kind="simple", name=str(items[0]))

    def enum_type(self, meta, items):
        return ast.TypeRef(pos=pos_of(meta), kind="enum", values=list(items))

    def enum_value(self, meta, items):
        name, label = items
        return ast.EnumValue(pos=pos_of(meta), name=str(name), label=_text(label))

    def ref_type(self, meta, items):
        return ast.TypeRef(pos=pos_of(meta), kind="ref", name=str(items[0]))

    def list_type(self, meta, items):
        return ast.TypeRef(pos=pos_of(meta), kind="list", name=str(items[0]))

    def _option(self, meta, key, value=None, value2=None):
        return ast.FieldOption(pos=pos_of(meta), key=key, value=value, value2=value2)

    def opt_required(self, meta, items):
        return self._option(meta, "required")

    def opt_unique(self, meta, items):
        return self._option(meta, "unique")

    def opt_default(self, meta, items):
        return self._option(meta, "default", items[0])

    def opt_max_length(self, meta, items):
        return self._option(meta, "max", int(items[0]))

    def opt_range(self, meta, items):
        return self._option(meta, "range", Decimal(str(items[0])), Decimal(str(items[1])))

    def opt_label(self, meta, items):
        return self._option(meta, "label", _text(items[0]))

    def opt_renamed(self, meta, items):
        return self._option(meta, "renamed", str(items[0]))

    # ---------------------------------------------------------- forms and lists
    def form_decl(self, meta, items):
        name, entity, title, *sections = items
        return ast.Form(pos=pos_of(meta), name=str(name), entity=str(entity), title=_text(title), sections=sections,
                        ref_pos=pos_of(entity))

    def form_section(self, meta, items):
        title, when, *fields = items
        return ast.FormSection(pos=pos_of(meta), title=_text(title), when=when,
                               fields=[f for f in fields if f is not None])

    def form_field(self, meta, items):
        name, *options = items
        field = ast.FormField(pos=pos_of(meta), name=str(name))
        for key, value in options:
            if key == "readonly":
                field.readonly = True
            else:
                field.when = value
        return field

    def field_readonly(self, meta, items):
        return ("readonly", None)

    def field_when(self, meta, items):
        return ("when", items[0])

    def list_decl(self, meta, items):
        name, entity, title, *body = items
        return ast.ListView(pos=pos_of(meta), name=str(name), entity=str(entity), title=_text(title), items=body,
                            ref_pos=pos_of(entity))

    def list_columns(self, meta, items):
        return ast.ListItem(pos=pos_of(meta), key="columns", value=_names(items))

    def list_filters(self, meta, items):
        return ast.ListItem(pos=pos_of(meta), key="filters", value=_names(items))

    def list_search(self, meta, items):
        return ast.ListItem(pos=pos_of(meta), key="search", value=_names(items))

    def list_sort(self, meta, items):
        name, order = items
        return ast.ListItem(pos=pos_of(meta), key="sort", value=str(name), value2=order or "asc")

    def sort_order(self, meta, items):
        return str(items[0])

    # ---------------------------------------------------------- workflows
    def workflow_decl(self, meta, items):
        name, entity, title, *body = items
        return ast.Workflow(pos=pos_of(meta), name=str(name), entity=str(entity), title=_text(title), items=body,
                            ref_pos=pos_of(entity))

    def workflow_hours(self, meta, items):
        return ast.WorkflowItem(pos=pos_of(meta), kind="hours", name=str(items[0]),
                                name_pos={str(items[0]): pos_of(items[0])})

    def workflow_state(self, meta, items):
        # Flags may stand before or after the title (`state waiting "等待客户" paused`).
        name, *rest = items
        title = next((t for t in rest if isinstance(t, Token)), None)
        flags = [f for f in rest if not isinstance(f, Token)]
        return ast.WorkflowItem(pos=pos_of(meta), kind="state", name=str(name), title=_text(title), flags=flags)

    def state_flag(self, meta, items):
        return str(items[0])

    def workflow_transition(self, meta, items):
        name, title, sources, dest, roles, guard, actions = items
        return ast.WorkflowItem(pos=pos_of(meta), kind="transition", name=str(name), title=_text(title),
                                sources=list(sources), dest=str(dest), roles=list(roles or []), guard=guard,
                                actions=actions or [],
                                name_pos=_positions([*sources.tokens, dest, *(roles.tokens if roles else [])]))

    def names(self, meta, items):
        return _Names(items)

    fired_by = names

    def guard(self, meta, items):
        return items[0]

    def actions(self, meta, items):
        return list(items)

    sla_rules = actions

    def action_assign(self, meta, items):
        return ast.WorkflowAction(pos=pos_of(meta), kind="assign", value=items[0])

    def action_notify(self, meta, items):
        return ast.WorkflowAction(pos=pos_of(meta), kind="notify", value=items[0], value2=_text(items[1]))

    def action_set(self, meta, items):
        return ast.WorkflowAction(pos=pos_of(meta), kind="set", value=str(items[0]), value2=items[1])

    def workflow_sla(self, meta, items):
        name, duration, start, stops, rules = items
        return ast.WorkflowItem(pos=pos_of(meta), kind="sla", name=str(name), duration_ms=parse_duration(duration),
                                sources=[str(start)], flags=list(stops), rules=rules or [],
                                name_pos=_positions([start, *stops.tokens]))

    def sla_escalate(self, meta, items):
        return ast.SlaRule(pos=pos_of(meta), kind="escalate", percent=_percent(items[0]), who=str(items[1]))

    def sla_notify(self, meta, items):
        return ast.SlaRule(pos=pos_of(meta), kind="notify", percent=_percent(items[0]), who=items[1])

    def sla_remind(self, meta, items):
        return ast.SlaRule(pos=pos_of(meta), kind="remind", who=items[0], every_ms=parse_duration(items[1]))

    # ---------------------------------------------------------- roles and evaluations
    def role_decl(self, meta, items):
        name, title, *permissions = items
        return ast.Role(pos=pos_of(meta), name=str(name), title=_text(title), permissions=permissions)

    def permission(self, meta, items):
        *access, entity, where = items
        return ast.Permission(pos=pos_of(meta), access=access, entity=str(entity), where=where)

    def access(self, meta, items):
        return str(items[0])

    def evaluation_decl(self, meta, items):
        name, title, call_types, *parts = items
        return ast.Evaluation(pos=pos_of(meta), name=str(name), title=_text(title), call_types=call_types,
                              parts=parts)

    def call_types(self, meta, items):
        return list(items)

    def eval_part(self, meta, items):
        name, title, not_for, *parts = items
        return ast.EvalPart(pos=pos_of(meta), name=str(name), title=_text(title), not_for=list(not_for or []), items=parts)

    not_for = names

    def eval_item(self, meta, items):
        name, title, points = items
        return ast.EvalItem(pos=pos_of(meta), name=str(name), title=_text(title), points=int(points))

    # ---------------------------------------------------------- expressions
    def string(self, meta, items):
        return ast.Literal(pos=pos_of(meta), kind="text", value=_text(items[0]))

    def number_lit(self, meta, items):
        return ast.Literal(pos=pos_of(meta), kind="number", value=Decimal(str(items[0])))

    def duration_lit(self, meta, items):
        return ast.Literal(pos=pos_of(meta), kind="duration", value=parse_duration(items[0]))

    def date_lit(self, meta, items):
        return ast.Literal(pos=pos_of(meta), kind="date", value=_date(items[0]))

    def true_lit(self, meta, items):
        return ast.Literal(pos=pos_of(meta), kind="bool", value=True)

    def false_lit(self, meta, items):
        return ast.Literal(pos=pos_of(meta), kind="bool", value=False)

    def none_lit(self, meta, items):
        return ast.Literal(pos=pos_of(meta), kind="none", value=None)

    def call(self, meta, items):
        name, *args = items
        return ast.Call(pos=pos_of(meta), name=str(name), args=[a for a in args if a is not None])

    def ref(self, meta, items):
        return ast.Ref(pos=pos_of(meta), parts=[str(t) for t in items])

    def or_(self, meta, items):
        return _fold(meta, "or", items)

    def and_(self, meta, items):
        return _fold(meta, "and", items)

    def not_(self, meta, items):
        return ast.Not(pos=pos_of(meta), operand=items[0])

    def compare(self, meta, items):
        return ast.Binary(pos=pos_of(meta), op=str(items[1]), left=items[0], right=items[2])

    def arith(self, meta, items):
        return ast.Binary(pos=pos_of(meta), op=str(items[1]), left=items[0], right=items[2])

    def in_(self, meta, items):
        return ast.In(pos=pos_of(meta), subject=items[0], options=list(items[1:]))

    def not_in(self, meta, items):
        return ast.In(pos=pos_of(meta), subject=items[0], options=list(items[1:]), negated=True)


class _Names(list):
    """Names as strings that remember their tokens (for positions)."""

    def __init__(self, tokens):
        super().__init__(str(t) for t in tokens if t is not None)
        self.tokens = [t for t in tokens if t is not None]


def _positions(tokens) -> dict[str, ast.Pos]:
    out: dict[str, ast.Pos] = {}
    for t in tokens:
        out.setdefault(str(t), pos_of(t))
    return out


def _fold(meta, op, items):
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
