"""The flow engine: every step kind, menus and collects with their tries, waiting for storage,
HTTP, the ACD and agents, endings, faults, saved states, and a few flows compiled from source."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from compiler import ir
from runtime import commands as c
from runtime import engine
from runtime import events as e
from runtime.engine import CallState, EngineOptions, flow_index, handle, start_call, start_flow

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)  # Monday 10:00
SORRY = EngineOptions().sorry_text


# ------------------------------------------------------------------ building flows

def T(*parts) -> list[ir.TextPart]:
    return [ir.TextPart(text=p) if isinstance(p, str) else ir.TextPart(expr=p) for p in parts]


from ir_helpers import const, op, var  # noqa: E402


def secret(name):
    return ir.Fn(type="text", name="secret", args=[const("text", name)])


def say(id, text, next=None):
    return ir.SayStep(id=id, text=T(text) if isinstance(text, str) else text, next=next)


def hangup(id="bye"):
    return ir.HangupStep(id=id)


def menu(id, options, prompt="请选择", retries=2, timeout_ms=5000, on_failure="failed", **handlers):
    return ir.MenuStep(id=id, prompt=T(prompt) if prompt else [], timeout_ms=timeout_ms, retries=retries,
                       options=[ir.MenuOption(key=k, goto=v) for k, v in options.items()], on_failure=on_failure,
                       **handlers)


def collect(id, var_name, digit_type, next, min_length=1, max_length=20, prompt="请输入", retries=2,
            timeout_ms=10_000, on_failure="failed", **more):
    return ir.CollectStep(id=id, var=var_name, digit_type=digit_type, prompt=T(prompt), min_length=min_length,
                          max_length=max_length, terminator="#", timeout_ms=timeout_ms, retries=retries,
                          on_failure=on_failure, next=next, **more)


def flow(name, *steps, entries=(), variables=None):
    return ir.Flow(name=name, start=steps[0].id, steps=list(steps), entries=list(entries), variables=variables or {})


def make_bundle(*flows, numbers=None, hours=(), queues=("support", "fallback"), agents=("li_na", "wang_fang")):
    return ir.Bundle(environment="test", numbers=numbers or {}, flows={f.name: f for f in flows},
                     queues={q: ir.Queue(name=q, strategy="longest_idle") for q in queues},
                     agents={a: ir.Agent(name=a) for a in agents}, hours={h.name: h for h in hours})


def simple(*steps, **kw):
    """A bundle with one flow `main` (plus the usual `failed` ending)."""
    return make_bundle(flow("main", *steps, say("failed", "再见", next="bye"), hangup()), **kw)


# ------------------------------------------------------------------ driving a call

class Call:
    """One call through the engine, the way an edge drives it; checks after every event that the
    given state was left alone and that the new one survives a save and a reload."""

    def __init__(self, bundle, flow="main", *, dialed=None, caller="13800138000", at=T0, options=EngineOptions()):
        self.bundle, self.options, self.now = bundle, options, at
        if dialed is not None:
            state, out = start_call(bundle, "c1", dialed=dialed, caller=caller, at=at, options=options)
        else:
            state, out = start_flow(bundle, flow, "c1", dialed="4008001000", caller=caller, at=at, options=options)
        self.state, self.out, self.log, self.timers = state, out, [], {}
        self._took(out)

    def _took(self, out):
        self._reloads(self.state)
        for command in out:
            assert not (isinstance(command, c.RuntimeFault) and command.message.startswith("internal error")), command
            if isinstance(command, c.StartTimer):
                self.timers[command.timer_id] = command.ms
            json.dumps(c.to_dict(command))
        self.log.extend(out)

    @staticmethod
    def _reloads(state):
        saved = json.loads(json.dumps(state.to_dict()))
        assert CallState.from_dict(saved).to_dict() == state.to_dict()

    def send(self, event):
        before = self.state.to_dict()
        state, out = handle(self.bundle, self.state, event, self.options)
        assert self.state.to_dict() == before, "handle changed the state it was given"
        self.state, self.out = state, out
        self._took(out)
        return out

    def event(self, cls, **fields):
        return self.send(cls(at=self.now, **fields))

    def wait(self, ms):
        self.now += dt.timedelta(milliseconds=ms)

    def finish(self):
        assert self.state.prompt, f"no prompt is playing (state {self.state.wait})"
        return self.event(e.PromptFinished, prompt_id=self.state.prompt)

    def press(self, keys):
        out = []
        for key in keys:
            out += self.event(e.DigitPressed, digit=key)
        return out

    def time_out(self):
        timer = self.state.timer
        assert timer, f"no timer is running (state {self.state.wait})"
        self.wait(self.timers[timer])
        return self.event(e.TimerFired, timer_id=timer)

    def hang_up(self):
        return self.event(e.CallerHungUp)

    # what came out
    @property
    def edge(self):
        """The commands of the last event meant for the edge, by kind."""
        return [type(x).__name__ for x in self.out if not isinstance(x, c.LOG_ONLY)]

    def said(self, out=None):
        return [x.text for x in (self.out if out is None else out) if isinstance(x, c.Say)]

    def one(self, cls, out=None):
        found = [x for x in (self.out if out is None else out) if isinstance(x, cls)]
        assert len(found) == 1, f"expected one {cls.__name__} in {self.out if out is None else out}"
        return found[0]

    def entered(self):
        return [x.step_id for x in self.log if isinstance(x, c.StepEntered)]


# ------------------------------------------------------------------ plain steps

def test_say_waits_for_the_prompt_then_goes_on():
    call = Call(simple(say("hello", "您好", next="bye")))
    assert call.edge == ["Answer", "Say"]
    assert call.said() == ["您好"] and call.state.wait == "prompt"
    call.finish()
    assert call.edge == ["Hangup"]
    assert call.one(c.CallEnded).reason == "hangup"
    assert call.state.ended == "hangup"
    assert call.state.history == ["main/hello", "main/bye"]
    assert call.entered() == ["hello", "bye"]


def test_answer_is_sent_once_and_play_plays_a_sound():
    call = Call(simple(ir.AnswerStep(id="pickup", next="music"), ir.PlayStep(id="music", sound="sounds/welcome", next="bye")))
    assert call.edge == ["Answer", "Play"]
    assert call.one(c.Play).sound == "sounds/welcome"
    call.finish()
    assert [type(x).__name__ for x in call.log].count("Answer") == 1


def test_say_with_nothing_to_say_goes_straight_on():
    call = Call(simple(say("empty", T(var("customer", "name")), next="bye")))
    assert call.edge == ["Hangup"]


def test_interpolated_prompt():
    steps = [ir.SetStep(id="s", path=["amount"], value=const("money", "58.2"), next="tell"),
             say("tell", T("余额 ", var("amount", type_="money"), " 元，来电 ", var("caller", type_="phone")), next="bye")]
    call = Call(simple(*steps))
    assert call.said() == ["余额 58.20 元，来电 13800138000"]


def test_set_branch_and_switch():
    steps = [
        ir.SetStep(id="count", path=["n"], value=op("+", const("number", "1"), const("number", "2"), type_="number"), next="check"),
        ir.BranchStep(id="check", conditions=[
            ir.Condition(when=op(">", var("n", type_="number"), const("number", "5")), goto="big"),
            ir.Condition(when=op("==", var("n", type_="number"), const("number", "3")), goto="kind")], next="big"),
        ir.SwitchStep(id="kind", subject=var("tier"), cases=[
            ir.SwitchCase(values=[const("text", "gold"), const("text", "platinum")], goto="vip")], next="normal"),
        say("big", "大", next="bye"), say("vip", "贵宾", next="bye"), say("normal", "普通", next="bye"),
    ]
    call = Call(simple(*steps))
    assert call.said() == ["普通"]
    assert call.one(c.VariableSet) == c.VariableSet(flow="main", name="n", value=Decimal(3))
    gold = simple(ir.SetStep(id="t", path=["tier"], value=const("text", "gold"), next="count"), *steps)
    assert Call(gold).said() == ["贵宾"]


def test_open_hours_decide_a_branch():
    office = ir.Hours(name="office", timezone="Asia/Shanghai", weekly={"mon": [ir.TimeRange(start="08:00", end="20:00")]},
                      closed=[ir.DateSpan(first="2026-11-24", last="2026-11-24")])
    steps = [ir.BranchStep(id="open?", conditions=[ir.Condition(when=ir.Fn(type="bool", name="open", args=[const("text", "office")]),
                                                                goto="open")], next="closed"),
             say("open", "欢迎", next="bye"), say("closed", "下班了", next="bye")]
    bundle = simple(*steps, hours=[office])
    assert Call(bundle, at=T0).said() == ["欢迎"]
    assert Call(bundle, at=T0.replace(hour=21)).said() == ["下班了"]
    assert Call(bundle, at=T0 + dt.timedelta(days=1)).said() == ["下班了"]  # closed on the 24th


def test_record_and_survey_are_remembered():
    call = Call(simple(ir.RecordStep(id="rec", next="arm"), ir.SurveyStep(id="arm", flow="survey", next="hello"),
                       say("hello", "您好", next="bye")))
    assert call.edge == ["StartRecording", "Answer", "Say"]
    assert call.state.recording and call.state.survey == "survey"


# ------------------------------------------------------------------ menus

def main_menu(**overrides):
    fields = dict(options={"1": "billing", "2": "support"})
    fields.update(overrides)
    return simple(menu("main", **fields), say("billing", "账单", next="bye"), say("support", "客服", next="bye"))


def test_menu_key_after_the_prompt():
    call = Call(main_menu())
    assert call.one(c.Say).barge_in and call.state.wait == "menu"
    call.finish()
    assert call.one(c.StartTimer).ms == 5000
    call.press("2")
    assert call.edge == ["CancelTimer", "Say"]
    assert call.said() == ["客服"]


def test_key_during_the_prompt_stops_it():
    call = Call(main_menu())
    prompt = call.state.prompt
    call.press("1")
    assert call.edge == ["StopPrompt", "Say"]
    assert call.one(c.StopPrompt).prompt_id == prompt
    assert call.said() == ["账单"]
    # the edge may still report the stopped prompt as finished: that changes nothing
    out = call.event(e.PromptFinished, prompt_id=prompt)
    assert [type(x).__name__ for x in out] == ["Ignored"]
    assert call.said(out) == []


def test_menu_timeouts_repeat_then_fail():
    call = Call(main_menu(retries=2))
    prompts = 1
    for attempt in (1, 2):
        call.finish()
        call.time_out()
        assert call.one(c.TryCounted) == c.TryCounted(flow="main", step_id="main", reason="timeout", tries=attempt)
        assert call.said() == ["请选择"]  # the default handler plays the menu again
        prompts += 1
    call.finish()
    call.time_out()
    assert call.said() == ["再见"]  # on_failure
    assert prompts == 3  # retries + 1 plays in all
    assert call.state.stack[-1].tries == {}


def test_invalid_keys_run_their_handler_and_count():
    steps = [menu("main", {"1": "billing"}, retries=1, on_invalid="wrong"),
             say("wrong", "按键无效", next="again"), ir.RepeatStep(id="again", menu="main"),
             say("billing", "账单", next="bye")]
    call = Call(simple(*steps))
    call.press("9")
    assert call.edge == ["StopPrompt", "Say"] and call.said() == ["按键无效"]
    assert call.one(c.TryCounted).reason == "invalid"
    call.finish()
    assert call.said() == ["请选择"]  # repeat: the menu again
    call.press("#")
    assert call.said() == ["再见"]  # 2 tries > 1 retry: on_failure, without the handler
    assert "wrong" not in call.entered()[-2:]


def test_a_handler_jumping_back_to_its_menu_counts_on():
    steps = [menu("main", {"1": "billing"}, retries=1, on_timeout="hint"), say("hint", "请按1", next="main"),
             say("billing", "账单", next="bye")]
    call = Call(simple(*steps))
    call.finish(); call.time_out()
    assert call.said() == ["请按1"]
    call.finish()  # back to the menu, by a jump rather than `repeat`
    call.finish(); call.time_out()
    assert call.said() == ["再见"]


def test_a_valid_key_starts_the_count_again():
    steps = [menu("main", {"1": "sub"}, retries=1), menu("sub", {"9": "main"}, prompt="子菜单", retries=1),
             say("billing", "账单", next="bye")]
    call = Call(simple(*steps))
    call.finish(); call.time_out()            # main: 1 try used
    call.press("1")                            # a valid key: main starts counting afresh
    call.press("9")                            # back to main
    call.finish(); call.time_out()
    assert call.one(c.TryCounted).tries == 1
    assert call.said() == ["请选择"]


def test_menu_without_a_prompt_starts_its_timer_at_once():
    call = Call(main_menu(prompt=""))
    assert call.edge == ["Answer", "StartTimer"] and call.state.prompt is None


def test_a_late_timer_is_ignored():
    call = Call(main_menu())
    call.finish()
    old = call.state.timer
    call.press("7")  # invalid: the menu plays again
    out = call.event(e.TimerFired, timer_id=old)
    assert out == [c.Ignored(event="TimerFired", reason=f"timer {old} is no longer running")]


def test_keys_that_are_not_phone_keys_are_ignored():
    call = Call(main_menu())
    out = call.event(e.DigitPressed, digit="12")
    assert isinstance(out[0], c.Ignored) and call.state.wait == "menu"


# ------------------------------------------------------------------ collect

def collect_flow(digit_type="digits", **kw):
    fields = dict(min_length=4, max_length=6)
    fields.update(kw)
    return simple(collect("ask", "entered", digit_type, next="thanks", **fields),
                  say("thanks", T("收到 ", var("entered")), next="bye"))


def test_collect_ends_at_max_length():
    call = Call(collect_flow())
    call.finish()
    call.press("12345")
    assert call.state.digits == "12345" and call.state.wait == "collect"
    call.press("6")
    assert call.said() == ["收到 123456"]
    assert call.one(c.VariableSet).value == "123456"


def test_collect_ends_at_the_terminator_and_keys_cut_the_prompt():
    call = Call(collect_flow())
    out = call.press("1234#")
    assert "StopPrompt" in [type(x).__name__ for x in out]
    assert call.said() == ["收到 1234"]


def test_collect_ends_when_the_caller_stops_typing():
    call = Call(collect_flow())
    call.finish()
    call.press("1234")
    call.time_out()  # inter-digit timeout: what was typed is taken
    assert call.said() == ["收到 1234"]


def test_collect_with_nothing_typed_is_a_timeout_and_too_short_is_invalid():
    call = Call(collect_flow(retries=1))
    call.finish()
    call.time_out()
    assert call.one(c.TryCounted).reason == "timeout"
    call.press("12#")
    assert call.one(c.TryCounted) == c.TryCounted(flow="main", step_id="ask", reason="invalid", tries=2)
    assert call.said() == ["再见"]
    assert "entered" not in call.state.variables


@pytest.mark.parametrize("digit_type, keys, good", [
    ("phone", "13800138000#", True), ("phone", "1380013800#", False), ("phone", "88886666#", True),
    ("card", "4111111111111111#", True), ("card", "4111111111111112#", False),
    ("amount", "12*50#", True), ("amount", "12*5*0#", False),
    ("date", "20261001#", True), ("date", "20260231#", False),
    ("number", "42#", True), ("digits", "0042#", True),
])
def test_collect_validates_by_type(digit_type, keys, good):
    call = Call(collect_flow(digit_type, min_length=1, max_length=20))
    call.press(keys)
    if good:
        assert call.said()[0].startswith("收到")
    else:
        assert call.one(c.TryCounted).reason == "invalid" and call.said() == ["请输入"]


def test_collected_values_have_their_type():
    call = Call(collect_flow("amount", min_length=1, max_length=10))
    call.press("12*5#")
    assert call.state.variables["entered"] == Decimal("12.5")
    call = Call(collect_flow("date", min_length=8, max_length=8))
    call.press("20261001")
    assert call.state.variables["entered"] == dt.date(2026, 10, 1)


def test_collect_valid_when():
    valid = op("<=", var("entered", type_="money"), const("money", "500"))
    bundle = collect_flow("amount", min_length=1, max_length=10, valid=valid, on_invalid="too_much")
    bundle.flows["main"].steps.append(say("too_much", "金额太大", next="ask"))
    call = Call(bundle)
    call.press("900#")
    assert call.said() == ["金额太大"]
    call.finish()
    call.press("300#")
    assert call.said() == ["收到 300"]


# ------------------------------------------------------------------ subflows

def test_subflow_runs_and_returns_with_its_own_variables():
    main = flow("main", ir.SetStep(id="s", path=["x"], value=const("text", "main"), next="sub"),
                ir.SubflowStep(id="sub", flow="verify", next="after"),
                say("after", T("回来了 ", var("x")), next="bye"), hangup())
    verify = flow("verify", ir.SetStep(id="s", path=["x"], value=const("text", "verify"), next="hi"),
                  say("hi", T("验证 ", var("x")), next="back"), ir.ReturnStep(id="back"),
                  variables={"y": ir.Variable(type="number", initial=const("number", "1"))})
    call = Call(make_bundle(main, verify))
    assert call.said() == ["验证 verify"]
    assert [fr.flow for fr in call.state.stack] == ["main", "verify"]
    assert call.state.variables == {"y": Decimal(1), "x": "verify"}
    call.finish()
    assert call.said() == ["回来了 main"]
    assert call.state.history == ["main/s", "main/sub", "verify/s", "verify/hi", "verify/back", "main/after"]


def test_return_from_the_outermost_flow_ends_the_call():
    call = Call(make_bundle(flow("main", ir.ReturnStep(id="back"))))
    assert call.edge == ["Hangup"] and call.state.ended == "hangup"


def test_a_subflow_calling_itself_is_stopped():
    loop = flow("main", say("hi", "嗨", next="again"), ir.SubflowStep(id="again", flow="main", next="bye"), hangup())
    call = Call(make_bundle(loop), options=EngineOptions(max_depth=3))
    for _ in range(2):
        call.finish()
    call.finish()
    assert "nested more than 3 deep" in call.one(c.RuntimeFault).message


# ------------------------------------------------------------------ storage

CUSTOMER_WHERE = op("==", var("@record", "phone", type_="phone"), var("caller", type_="phone"))


def lookup_flow():
    return simple(ir.LookupStep(id="find", var="customer", entity="Customer", where=CUSTOMER_WHERE,
                                not_found="stranger", next="greet"),
                  say("greet", T("您好 ", var("customer", "name")), next="bye"), say("stranger", "您好", next="bye"))


def test_lookup_asks_storage_with_flow_values_filled_in():
    call = Call(lookup_flow())
    assert call.one(c.Lookup) == c.Lookup(entity="Customer", equals={"phone": "13800138000"}, where=None)
    assert call.state.wait == "lookup"
    call.event(e.LookupResult, record={"id": 1, "name": "张三", "phone": "13800138000"})
    assert call.said() == ["您好 张三"]
    assert call.state.variables["customer"]["id"] == 1


def test_lookup_not_found():
    call = Call(lookup_flow())
    call.event(e.LookupResult, record=None)
    assert call.said() == ["您好"]
    assert call.state.variables["customer"] is None


def test_lookup_asks_for_the_references_the_flow_reads_through():
    where = op("and", CUSTOMER_WHERE, op("==", var("@record", "manager", "team", "name"), const("text", "vip")))
    steps = [ir.LookupStep(id="find", var="customer", entity="Customer", where=where, not_found="bye", next="ring"),
             ir.TransferAgentStep(id="ring", agent=var("customer", "manager", "agent", type_="agent"), timeout_ms=20_000,
                                  on_no_answer="bye")]
    call = Call(simple(*steps))
    lookup = call.one(c.Lookup)
    assert lookup.follow == ("manager", "manager.team")
    assert lookup.equals == {"phone": "13800138000"}
    call.event(e.LookupResult, record={"id": 1, "manager": {"id": 2, "agent": "li_na"}})
    assert call.one(c.TransferToAgent).agent == "li_na"


def test_a_record_stored_in_a_reference_field_is_its_id():
    steps = [ir.LookupStep(id="find", var="customer", entity="Customer", where=CUSTOMER_WHERE, not_found="bye", next="new"),
             ir.CreateStep(id="new", var="ticket", entity="Ticket", fields={"customer": var("customer", type_="record:Customer")},
                           next="bye")]
    call = Call(simple(*steps))
    call.event(e.LookupResult, record={"id": 9, "name": "张三"})
    assert call.one(c.CreateRecord).fields == {"customer": 9}
    assert call.state.variables["ticket"] == {"customer": {"id": 9, "name": "张三"}}


def test_create_and_update_records():
    steps = [ir.CreateStep(id="new", var="ticket", entity="Ticket",
                           fields={"phone": var("caller", type_="phone"), "category": const("text", "complaint")}, next="close"),
             ir.UpdateStep(id="close", var="ticket", entity="Ticket", fields={"status": const("text", "closed")}, next="bye")]
    call = Call(simple(*steps))
    assert call.one(c.CreateRecord) == c.CreateRecord(entity="Ticket", fields={"phone": "13800138000", "category": "complaint"})
    assert call.state.wait == "write"
    call.event(e.RecordWritten, record_id=42)
    assert call.one(c.UpdateRecord) == c.UpdateRecord(entity="Ticket", record_id=42, fields={"status": "closed"})
    assert call.one(c.VariableSet).value == {"phone": "13800138000", "category": "complaint", "id": 42}
    call.event(e.RecordWritten, record_id=42, record={"id": 42, "status": "closed", "phone": "13800138000"})
    assert call.state.ended == "hangup"


def test_updating_nothing_is_a_fault():
    call = Call(simple(ir.UpdateStep(id="u", var="customer", entity="Customer", fields={}, next="bye")))
    assert "cannot update 'customer'" in call.one(c.RuntimeFault).message
    assert call.said() == [SORRY]


def test_storage_failure_takes_the_fallback():
    call = Call(lookup_flow())
    call.event(e.StorageFailed, reason="database is down")
    assert call.one(c.RuntimeFault) == c.RuntimeFault(flow="main", step_id="find", message="storage failed: database is down")
    assert call.said() == [SORRY]
    call.finish()
    assert call.one(c.Hangup).reason == "error"


# ------------------------------------------------------------------ http

def http_flow(**overrides):
    fields = dict(id="bill", var="bill", method="GET",
                  url=op("+", const("text", "http://billing/bills/"), var("caller", type_="phone"), type_="text"),
                  timeout_ms=3000, returns={"amount": "money", "due": "date"}, on_error="oops", next="tell",
                  headers=[ir.HttpHeader(name="Authorization",
                                         value=op("+", const("text", "Bearer "), secret("TOKEN"), type_="text")),
                           ir.HttpHeader(name="Accept", value=const("text", "application/json"))])
    fields.update(overrides)
    return simple(ir.HttpStep(**fields),
                  say("tell", T("余额 ", var("bill", "amount", type_="money"), " 元"), next="bye"),
                  say("oops", "查询失败", next="bye"))


SECRETS = EngineOptions(secrets={"TOKEN": "t0ken"}.get)


def test_http_reply_with_typed_fields():
    call = Call(http_flow(), options=SECRETS)
    request = call.one(c.HttpRequest)
    assert request.url == "http://billing/bills/13800138000" and request.timeout_ms == 3000
    assert request.headers == {"Authorization": "Bearer t0ken", "Accept": "application/json"}
    logged = c.to_dict(request)
    assert logged["headers"] == {"Authorization": "***", "Accept": "application/json"}
    assert call.edge == ["HttpRequest", "StartTimer"]
    call.event(e.HttpReply, status=200, body={"amount": "58.2", "due": "2026-12-01", "extra": 1})
    assert call.edge == ["CancelTimer", "Answer", "Say"]
    assert call.said() == ["余额 58.20 元"]
    assert call.state.variables["bill"] == {"amount": Decimal("58.2"), "due": dt.date(2026, 12, 1), "extra": 1}


@pytest.mark.parametrize("status, body", [
    (500, {"amount": "1", "due": "2026-12-01"}),
    (200, {"amount": "1"}),                          # a field of `returns` is missing
    (200, {"amount": "lots", "due": "2026-12-01"}),  # not money
    (200, "not json"),
    (200, [1, 2]),
])
def test_http_replies_that_do_not_fit_go_to_on_error(status, body):
    call = Call(http_flow(), options=SECRETS)
    call.event(e.HttpReply, status=status, body=body)
    assert call.said() == ["查询失败"]
    assert call.state.variables["bill"] is None


def test_http_reply_as_json_text():
    call = Call(http_flow(), options=SECRETS)
    call.event(e.HttpReply, status=200, body='{"amount": 3, "due": "2026-12-01"}')
    assert call.said() == ["余额 3 元"]


def test_http_failure_and_timeout():
    call = Call(http_flow(), options=SECRETS)
    call.event(e.HttpFailed, reason="connection refused")
    assert call.said() == ["查询失败"] and "connection refused" in call.one(c.Note).text
    call = Call(http_flow(), options=SECRETS)
    call.time_out()
    assert call.said() == ["查询失败"]
    late = call.event(e.HttpReply, status=200, body={"amount": "1", "due": "2026-12-01"})
    assert isinstance(late[0], c.Ignored)


def test_http_without_the_secret_takes_the_fallback():
    call = Call(http_flow())
    assert "secret 'TOKEN' is not set" in call.one(c.RuntimeFault).message
    assert call.said() == [SORRY]


# ------------------------------------------------------------------ queues, agents, surveys

def queue_flow(prefer=None):
    return make_bundle(
        flow("main", ir.SurveyStep(id="arm", flow="survey", next="wait"),
             ir.EnqueueStep(id="wait", queue="support", priority=5, prefer=prefer, prefer_for_ms=30_000 if prefer else 0)),
        flow("survey", menu("rate", {"1": "thanks", "2": "thanks"}, prompt="请评分", on_failure="bye"),
             say("thanks", "谢谢", next="bye"), hangup()))


def test_enqueue_then_agent_then_survey():
    call = Call(queue_flow(prefer=const("agent", "li_na")))
    assert call.one(c.Enqueue) == c.Enqueue(queue="support", priority=5, prefer_agent="li_na", prefer_for_ms=30_000)
    assert call.edge == ["Answer", "Enqueue"] and call.state.wait == "queue"
    call.event(e.AgentAnswered, agent="wang_fang")
    assert call.state.wait == "connected" and call.state.agent == "wang_fang"
    call.event(e.AgentLeft)
    assert call.said() == ["请评分"] and call.state.flow == "survey" and call.state.survey is None
    call.press("1")
    assert call.said() == ["谢谢"]


def test_agent_leaving_without_a_survey_hangs_up():
    call = Call(simple(ir.EnqueueStep(id="wait", queue="support", priority=0)))
    call.event(e.AgentAnswered, agent="li_na")
    call.event(e.AgentLeft)
    assert call.one(c.Hangup).reason == "agent_hangup" and call.state.ended == "agent_hangup"


@pytest.mark.parametrize("kind, target, edge, wait", [
    ("voicemail", "support_box", ["Voicemail"], "ended"),
    ("hangup", None, ["Hangup"], "ended"),
    ("queue", "fallback", [], "queue"),
    ("callback", None, [], "queue"),
])
def test_queue_overflow(kind, target, edge, wait):
    call = Call(simple(ir.EnqueueStep(id="wait", queue="support", priority=0)))
    call.event(e.QueueOverflow, kind=kind, target=target)
    assert call.edge == edge and call.state.wait == wait
    if kind == "queue":
        assert call.state.queue == "fallback"
    if kind == "voicemail":
        assert call.one(c.Voicemail).box == "support_box" and call.state.ended == "voicemail"


def transfer_flow(agent=const("agent", "li_na")):
    return simple(ir.TransferAgentStep(id="ring", agent=agent, timeout_ms=20_000, on_no_answer="busy"),
                  ir.VoicemailStep(id="busy", box="manager", callback=True))


def test_transfer_to_an_agent_who_answers():
    call = Call(transfer_flow())
    assert call.one(c.TransferToAgent) == c.TransferToAgent(agent="li_na", timeout_ms=20_000)
    assert call.one(c.StartTimer).ms == 20_000
    call.event(e.AgentAnswered, agent="li_na")
    assert call.edge == ["CancelTimer"] and call.state.wait == "connected"


def test_transfer_to_an_agent_who_does_not_answer():
    call = Call(transfer_flow())
    call.event(e.TransferFailed, reason="busy")
    assert call.edge == ["CancelTimer", "Answer", "Voicemail"]
    assert call.one(c.Voicemail) == c.Voicemail(box="manager", callback=True)
    call = Call(transfer_flow())
    call.time_out()  # the engine's own timeout
    assert call.edge == ["CancelTransfer", "Answer", "Voicemail"]
    assert call.state.ended == "voicemail"


def test_transfer_to_nobody_takes_the_no_answer_path():
    call = Call(transfer_flow(agent=var("customer", "manager", "agent", type_="agent")))
    assert call.edge == ["Answer", "Voicemail"]
    assert "no agent to ring" in call.one(c.Note).text


def test_transfer_to_a_number():
    call = Call(simple(ir.TransferNumberStep(id="out", number=const("text", "10086"))))
    assert call.one(c.TransferToNumber).number == "10086"
    assert call.one(c.CallEnded).reason == "transferred" and call.state.ended == "transferred"
    call.event(e.TransferFailed, reason="unreachable")
    assert call.said() == [SORRY]
    call.finish()
    assert call.one(c.Hangup).reason == "error"


def test_a_transferred_call_that_hangs_up_is_done_quietly():
    call = Call(simple(ir.TransferNumberStep(id="out", number=const("text", "10086"))))
    assert call.hang_up() == [] and call.state.wait == "ended" and call.state.ended == "transferred"


# ------------------------------------------------------------------ the caller hangs up, whatever the call waits for

def waiting_in(where: str) -> Call:
    if where == "prompt":
        return Call(simple(say("hi", "您好", next="bye")))
    if where == "menu prompt":
        return Call(main_menu())
    if where == "menu timer":
        call = Call(main_menu()); call.finish(); return call
    if where == "collect":
        call = Call(collect_flow()); call.press("12"); return call
    if where == "lookup":
        return Call(lookup_flow())
    if where == "write":
        return Call(simple(ir.CreateStep(id="n", entity="Ticket", fields={}, next="bye")))
    if where == "http":
        return Call(http_flow(), options=SECRETS)
    if where == "queue":
        return Call(queue_flow())
    if where == "transfer":
        return Call(transfer_flow())
    if where == "connected":
        call = Call(queue_flow()); call.event(e.AgentAnswered, agent="li_na"); return call
    if where == "farewell":
        return Call(simple(ir.UpdateStep(id="u", var="nothing", entity="X", fields={}, next="bye")))
    raise AssertionError(where)


@pytest.mark.parametrize("where, edge", [
    ("prompt", []), ("menu prompt", []), ("menu timer", ["CancelTimer"]), ("collect", ["CancelTimer"]),
    ("lookup", []), ("write", []), ("http", ["CancelTimer"]), ("queue", []), ("transfer", ["CancelTransfer", "CancelTimer"]),
    ("connected", []), ("farewell", []),
])
def test_caller_hangs_up_while_waiting(where, edge):
    call = waiting_in(where)
    assert call.state.wait != "ended"
    call.hang_up()
    assert call.edge == edge
    assert call.one(c.CallEnded).reason == "caller_hangup"
    assert call.state.wait == "ended" and call.state.timer is None
    late = call.event(e.DigitPressed, digit="1")
    assert late == [c.Ignored(event="DigitPressed", reason="the call has ended")]


# ------------------------------------------------------------------ what does not fit

def test_events_that_do_not_fit_are_ignored():
    call = Call(simple(say("hi", "您好", next="bye")))
    for event in (e.DigitPressed(at=T0, digit="1"), e.LookupResult(at=T0, record=None),
                  e.AgentLeft(at=T0), e.HttpReply(at=T0, status=200)):
        out = call.send(event)
        assert len(out) == 1 and isinstance(out[0], c.Ignored), out
    assert call.state.wait == "prompt"


def test_unknown_number_hears_a_message_and_is_hung_up():
    bundle = make_bundle(flow("main", say("hi", "您好", next="bye"), hangup()), numbers={"4008001000": "main"})
    call = Call(bundle, dialed="999")
    assert call.edge == ["Answer", "Say"] and call.said() == [EngineOptions().unknown_number_text]
    call.finish()
    assert call.one(c.Hangup).reason == "unknown_number"
    known = Call(bundle, dialed="4008001000")
    assert known.said() == ["您好"] and known.state.flow == "main"


def test_start_flow_refuses_an_unknown_flow():
    with pytest.raises(ValueError, match="there is no flow 'nope'; the flows are: main"):
        start_flow(simple(hangup("x")), "nope", "c1", at=T0)


# ------------------------------------------------------------------ faults

def test_division_by_zero_says_sorry_and_hangs_up():
    zero = op("/", const("number", "1"), const("number", "0"), type_="number")
    call = Call(simple(ir.SetStep(id="boom", path=["x"], value=zero, next="bye")))
    fault = call.one(c.RuntimeFault)
    assert fault.step_id == "boom" and "division by zero" in fault.message
    assert call.edge == ["Answer", "Say"] and call.said() == [SORRY] and call.state.wait == "farewell"
    call.finish()
    assert call.one(c.Hangup).reason == "error" and call.state.ended == "error"


def test_a_fault_can_go_to_a_fallback_queue():
    options = EngineOptions(fallback_queue="fallback", sorry_text="稍等")
    call = Call(simple(ir.UpdateStep(id="u", var="nothing", entity="X", fields={}, next="bye")), options=options)
    assert call.said() == ["稍等"]
    call.finish()
    assert call.one(c.Enqueue).queue == "fallback" and call.state.wait == "queue"


def test_a_fault_while_a_prompt_plays_stops_it():
    call = Call(simple(say("hi", "您好", next="bye")).model_copy(update={"hash": "sha256:old"}))
    playing = call.state.prompt
    call.bundle = simple(say("other", "别的", next="bye")).model_copy(update={"hash": "sha256:new"})
    call.event(e.DigitPressed, digit="1")
    assert call.edge == ["StopPrompt", "Say"] and call.one(c.StopPrompt).prompt_id == playing
    assert call.said() == [SORRY]


def test_a_fault_in_a_valid_condition():
    call = Call(collect_flow(valid=op("<", var("entered", type_="number"), var("unset", type_="number"))))
    call.press("1234#")
    assert "one side is none" in call.one(c.RuntimeFault).message
    assert call.said() == [SORRY]


def test_a_loop_that_never_waits_is_stopped():
    loop = ir.BranchStep(id="spin", conditions=[], next="spin")
    call = Call(simple(loop), options=EngineOptions(max_steps=50))
    assert "50 steps without waiting" in call.one(c.RuntimeFault).message
    assert len(call.state.history) <= engine.HISTORY_LIMIT


def test_an_error_inside_the_engine_never_escapes(monkeypatch):
    call = Call(main_menu())

    def broken(turn, event):
        raise RuntimeError("oops")

    monkeypatch.setitem(engine.HANDLERS["menu"], e.DigitPressed, broken)
    state, out = handle(call.bundle, call.state, e.DigitPressed(at=T0, digit="1"))
    assert out[0] == c.RuntimeFault(flow="main", step_id="main", message="internal error: RuntimeError: oops")
    assert state.wait == "farewell"
    monkeypatch.setitem(engine.STEPS, "menu", broken)
    state, out = start_flow(call.bundle, "main", "c2", at=T0)
    assert out[1] == c.RuntimeFault(flow="main", step_id="main", message="internal error: RuntimeError: oops")
    assert state.wait == "farewell" and [x.text for x in out if isinstance(x, c.Say)] == [SORRY]


def test_a_step_missing_from_the_bundle_takes_the_fallback():
    call = Call(simple(say("hi", "您好", next="nowhere")))
    call.finish()
    assert "flow 'main' has no step 'nowhere'" in call.one(c.RuntimeFault).message


# ------------------------------------------------------------------ bundles and saved states

def test_a_call_goes_on_with_a_new_bundle_that_still_has_its_step():
    old = main_menu().model_copy(update={"hash": "sha256:old"})
    call = Call(old)
    new = main_menu(options={"1": "billing", "2": "billing"}).model_copy(update={"hash": "sha256:new"})
    call.bundle = new
    call.press("2")
    assert call.said() == ["账单"] and call.state.bundle_hash == "sha256:new"
    assert "it started on sha256:old" in call.one(c.Note).text


def test_a_call_whose_step_is_gone_from_the_new_bundle_takes_the_fallback():
    call = Call(main_menu().model_copy(update={"hash": "sha256:old"}))
    call.bundle = simple(say("other", "别的", next="bye")).model_copy(update={"hash": "sha256:new"})
    call.press("1")
    assert "main/main is not in the bundle" in call.one(c.RuntimeFault).message


def test_a_saved_call_goes_on_after_a_restart():
    bundle = http_flow()
    call = Call(bundle, options=SECRETS)
    saved = json.dumps(call.state.to_dict())
    reply = e.HttpReply(at=T0, status=200, body={"amount": "1.5", "due": "2026-12-01"})
    _, expected = handle(bundle, call.state, reply, SECRETS)
    _, after_restart = handle(bundle.model_copy(deep=True), CallState.from_dict(json.loads(saved)), reply, SECRETS)
    assert after_restart == expected


def test_a_bad_saved_state_is_refused_with_a_message():
    with pytest.raises(ValueError, match="not a saved call state"):
        CallState.from_dict({"call_id": "x"})


def test_the_index_is_made_once_per_bundle():
    bundle = main_menu()
    assert flow_index(bundle) is flow_index(bundle)
    other = bundle.model_copy(deep=True)
    assert flow_index(other) is not flow_index(bundle)
    assert flow_index(other).steps.keys() == flow_index(bundle).steps.keys()


def test_events_round_trip_through_json():
    for event in (e.DigitPressed(at=T0, digit="5"), e.HttpReply(at=T0, status=200, body={"a": Decimal("1.5")}),
                  e.LookupResult(at=T0, record=None), e.QueueOverflow(at=T0, kind="queue", target="b"),
                  e.RecordWritten(at=T0, record_id=3)):
        assert e.from_dict(json.loads(json.dumps(e.to_dict(event)))) == event
    with pytest.raises(ValueError, match="unknown event kind 'Dance'"):
        e.from_dict({"event": "Dance", "at": T0.isoformat()})
    with pytest.raises(ValueError, match="must carry a time zone"):
        e.from_dict({"event": "CallerHungUp", "at": "2026-11-23T10:00:00"})
    with pytest.raises(ValueError, match="DigitPressed has no field key"):
        e.from_dict({"event": "DigitPressed", "at": T0.isoformat(), "key": "1"})


def test_secret_values_are_masked_in_the_log():
    step = ir.SetStep(id="s", path=["token"], value=secret("TOKEN"), next="bye")
    call = Call(simple(step), options=SECRETS)
    assert call.state.variables["token"] == "t0ken"
    assert c.to_dict(call.one(c.VariableSet, call.log))["value"] == "***"


def test_many_calls_at_once_stay_small_and_quick():
    """The what-if simulator keeps thousands of calls; each event's work must not grow with them."""
    import time

    bundle = main_menu()
    calls = {}
    started = time.perf_counter()
    for i in range(2000):
        state, out = start_flow(bundle, "main", f"c{i}", caller="13800138000", at=T0)
        state, out = handle(bundle, state, e.PromptFinished(at=T0, prompt_id=state.prompt))
        calls[i] = handle(bundle, state, e.DigitPressed(at=T0, digit="1"))[0]
    elapsed = time.perf_counter() - started
    assert all(state.wait == "prompt" for state in calls.values())
    assert elapsed < 10, f"{elapsed:.1f}s for 6000 events"
    assert len(json.dumps(calls[0].to_dict())) < 600


# ------------------------------------------------------------------ flows compiled from source

def compile_flows(tmp_path, text):
    from compiler import compile_project

    (tmp_path / "flowdesk.yaml").write_text("default_environment: test\nenvironments:\n  test: {HOTLINE: \"4008001000\"}\n")
    path = tmp_path / "main.flow"
    path.write_text(text, encoding="utf-8")
    result = compile_project([tmp_path])
    assert result.ok, [str(d) for d in result.errors]
    return result.bundle


SOURCE = '''
entity Customer {
  name: text
  phone: phone
}

queue support { strategy longest_idle }

flow hotline {
  entry number env.HOTLINE
  lookup customer = Customer where phone == caller else -> stranger
  say "您好 {customer.name}"
  main: menu {
    prompt "查询请按1，人工请按2"
    1 "查询" {
      collect account: digits { prompt "请输入账号" length 4 }
      goto confirm
    }
    2 "人工" -> agent
    on failure -> agent
  }
  confirm: say "账号 {account}"
  hangup
  stranger: say "您好"
  goto main
  agent: enqueue support
}
'''


def test_a_compiled_flow(tmp_path):
    bundle = compile_flows(tmp_path, SOURCE)
    call = Call(bundle, dialed="4008001000")
    assert call.one(c.Lookup) == c.Lookup(entity="Customer", equals={"phone": "13800138000"}, where=None)
    call.event(e.LookupResult, record={"id": 1, "name": "张三", "phone": "13800138000"})
    assert call.said() == ["您好 张三"]
    call.finish()
    assert call.said() == ["查询请按1，人工请按2"]
    call.press("1")
    assert call.said() == ["请输入账号"]
    call.press("1234")
    assert call.said() == ["账号 1234"]
    call.finish()
    assert call.state.ended == "hangup"


def test_a_compiled_menu_fails_over_to_the_queue(tmp_path):
    call = Call(compile_flows(tmp_path, SOURCE), dialed="4008001000")
    call.event(e.LookupResult, record=None)
    assert call.said() == ["您好"]
    call.finish()
    for _ in range(3):  # the first play and two retries
        call.finish()
        call.time_out()
    assert call.one(c.Enqueue).queue == "support"
    assert call.state.history[-2:] == ["hotline/main", "hotline/agent"]


# ------------------------------------------------------------------ any events in any order

def everything():
    """A flow that reaches every kind of wait."""
    return make_bundle(
        flow("main", ir.SurveyStep(id="arm", flow="survey", next="hi"), say("hi", "您好", next="main"),
             menu("main", {"1": "find", "2": "ask", "3": "bill", "4": "ring", "5": "wait", "6": "sub", "7": "out"},
                  on_failure="bye"),
             ir.LookupStep(id="find", var="customer", entity="Customer", where=CUSTOMER_WHERE, not_found="main", next="new"),
             ir.CreateStep(id="new", var="ticket", entity="Ticket", fields={"customer": var("customer", type_="record:Customer")},
                           next="main"),
             collect("ask", "n", "number", next="main", on_failure="main", max_length=3),
             ir.HttpStep(id="bill", var="bill", method="GET", url=const("text", "http://x"), timeout_ms=3000,
                         returns={"amount": "money"}, on_error="main", next="main"),
             ir.TransferAgentStep(id="ring", agent=const("agent", "li_na"), timeout_ms=20_000, on_no_answer="main"),
             ir.EnqueueStep(id="wait", queue="support", priority=0),
             ir.SubflowStep(id="sub", flow="survey", next="main"),
             ir.TransferNumberStep(id="out", number=const("text", "10086")), hangup()),
        flow("survey", menu("rate", {"1": "back"}, prompt="评分", retries=0, on_failure="back"), ir.ReturnStep(id="back")))


def any_event(data, state, at):
    from hypothesis import strategies as st

    kind = data.draw(st.sampled_from(["digit", "prompt", "timer", "lookup", "written", "storage", "reply", "http_failed",
                                      "answered", "left", "overflow", "transfer_failed", "hangup"]))
    own = data.draw(st.booleans())  # the id the call waits for, or another one
    if kind == "digit":
        return e.DigitPressed(at=at, digit=data.draw(st.sampled_from(list("0123456789*#"))))
    if kind == "prompt":
        return e.PromptFinished(at=at, prompt_id=state.prompt if own and state.prompt else "p999")
    if kind == "timer":
        return e.TimerFired(at=at, timer_id=state.timer if own and state.timer else "t999")
    if kind == "lookup":
        return e.LookupResult(at=at, record=data.draw(st.sampled_from([None, {"id": 1, "name": "张三"}])))
    if kind == "written":
        return e.RecordWritten(at=at, record_id=5)
    if kind == "storage":
        return e.StorageFailed(at=at, reason="down")
    if kind == "reply":
        return e.HttpReply(at=at, status=data.draw(st.sampled_from([200, 404])),
                           body=data.draw(st.sampled_from([{"amount": "1.5"}, {}, "x", None])))
    if kind == "http_failed":
        return e.HttpFailed(at=at, reason="refused")
    if kind == "answered":
        return e.AgentAnswered(at=at, agent="li_na")
    if kind == "left":
        return e.AgentLeft(at=at)
    if kind == "overflow":
        return e.QueueOverflow(at=at, kind=data.draw(st.sampled_from(["voicemail", "hangup", "queue", "callback", "odd"])),
                               target="fallback")
    if kind == "transfer_failed":
        return e.TransferFailed(at=at)
    return e.CallerHungUp(at=at)


def test_any_events_in_any_order_never_break_a_call():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    bundle = everything()

    @settings(max_examples=150, deadline=None)
    @given(st.data())
    def run(data):
        call = Call(bundle)
        for i in range(data.draw(st.integers(min_value=1, max_value=40))):
            call.wait(1000)
            ended_before = call.state.wait == "ended"
            out = call.send(any_event(data, call.state, call.now))
            if ended_before:
                assert [type(x) for x in out] == [c.Ignored]
            s = call.state
            # what the call waits for is consistent with what it asked for
            assert (s.prompt is not None) <= (s.wait in ("prompt", "menu", "collect", "farewell"))
            assert (s.timer is not None) <= (s.wait in ("menu", "collect", "http", "transfer"))
            assert (s.ended is not None) == (s.wait in ("ended", "transferred"))
            assert not any(isinstance(x, c.RuntimeFault) and "internal" in x.message for x in out)

    run()
