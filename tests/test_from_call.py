"""`flowdesk test --from-call`: a logged call of the example hotline becomes a flow test that passes
on the same flows and fails when they change.

Each call is driven as the telephone edge drives a real one (prompts take their time, keys and
agents come later, outside systems answer after a moment or not at all, secrets have real values),
logged to SQLite or PostgreSQL, made into a test file with the command line, and run with it.
"""
from __future__ import annotations

import copy
import datetime as dt
import shutil
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

import pytest
import yaml

from compiler import compile_project
from flowdesk.cli import main
from runtime import events as e
from runtime.callcenter import CallCenter, MemoryCrm
from runtime.engine import EngineOptions
from runtime.scenario import load_tests
from runtime.storage import EventLog

ROOT = Path(__file__).resolve().parents[1]
SH = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 11, 23, 10, 0, 7, tzinfo=SH)  # a Monday morning: people answer
CALL = "call-2026-11-23-0001"
SECRET = "tok-4f9a77e1"  # the billing and switch tokens where the calls ran
BALANCE = {"balance": "58.20", "due": "30.00", "due_date": "2026-12-10"}
REAL_CRM = {  # what the production CRM holds: more than any one call finds
    "AccountManager": [{"id": 1, "name": "张伟", "phone": "13900000001", "agent": "zhang_wei"}],
    "Customer": [
        {"id": 11, "name": "李普通", "phone": "13800138000", "tier": "general", "id_card": "110105199001011232",
         "status": "active", "balance": Decimal("58.20"), "joined": dt.date(2019, 5, 1)},
        {"id": 12, "name": "钱金卡", "phone": "13800000002", "tier": "gold", "manager": 1, "status": "active"},
        {"id": 13, "name": "赵白金", "phone": "13800000001", "tier": "platinum", "manager": 1},
        {"id": 14, "name": "吴金卡", "phone": "13800000006", "tier": "gold"},
        {"id": 15, "name": "孙星级", "phone": "13800000003", "tier": "star"},
    ],
    "Ticket": [{"id": 1041, "caller_phone": "13700000000", "category": "complaint", "description": "earlier"}],
}


class Line:
    """One call into the hotline on a simulated clock, driven as an edge drives a real call."""

    def __init__(self, bundle, caller: str, agents=(), replies=None, log_events: bool = True):
        self.now = T0
        self.replies = replies or {}  # a part of the address -> (status, body), "refused", None, ("late", reply)
        self.requests, self.pending = [], []
        self.center = CallCenter(bundle, epoch=T0, crm=MemoryCrm(bundle, copy.deepcopy(REAL_CRM)), http=self._http,
                                 prompt_ms=lambda command: 2500, options=EngineOptions(secrets=lambda name: SECRET),
                                 log_events=log_events)
        for agent in agents:
            self.center.login(agent, T0)
        self.center.start_call(CALL, caller=caller, dialed="4008001000", at=T0)

    def _http(self, request):
        """Replies come a moment later, as from a real system; `refused` at once."""
        self.requests.append(request)
        reply = next((r for part, r in self.replies.items() if part in request.url), None)
        if reply == "refused":
            return "connection refused"
        if reply is not None:
            late = reply[0] == "late"
            status, body = reply[1] if late else reply
            self.pending.append((self.now + dt.timedelta(seconds=5 if late else 0.4),
                                 lambda at: e.HttpReply(at=at, status=status, body=body)))
        return None

    def after(self, seconds: float) -> None:
        for _ in range(round(seconds * 10)):
            self.now += dt.timedelta(seconds=0.1)
            self.center.advance(self.now)
            for due, make in [p for p in self.pending if p[0] <= self.now]:
                self.pending.remove((due, make))
                self.center.deliver(CALL, make(self.now))

    def press(self, keys: str) -> None:
        for key in keys:
            self.center.press(CALL, key, self.now)
            self.after(0.3)

    def answer(self, agent: str) -> None:
        assert self.center.ringing.get(agent) == CALL, self.center.ringing
        self.center.agent_answers(agent, self.now)

    def ringing(self) -> str:
        (agent,) = [a for a, call in self.center.ringing.items() if call == CALL]
        return agent

    def agent_hangs_up(self) -> None:
        self.center.agent_hangs_up(CALL, self.now)

    def hangup(self) -> None:
        self.center.caller_hangs_up(CALL, self.now)

    @property
    def state(self):
        return self.center.calls[CALL].state

    def log(self, database_url: str) -> None:
        EventLog(database_url).write(self.center.take_rows())


@dataclass
class Way:
    """One way through the hotline: the call, what its test must expect, and a change that breaks it."""
    caller: str
    script: Callable[[Line], None]
    expect: dict
    change: tuple[str, str, str]             # file, text, replacement
    agents: tuple[str, ...] = ()
    replies: dict = field(default_factory=dict)
    check: Callable[[dict], None] = lambda test_file: None
    warning: str | None = None               # what the command warns of, if anything


def balance(line: Line) -> None:
    line.after(10)        # jingle, greeting, the main menu
    line.press("1")
    line.after(4)
    line.press("1")       # this number: the billing system answers
    line.after(6)
    line.press("1")       # hear it again
    line.after(5.5)
    line.press("*")
    line.after(30)        # silence at the after-service menu: goodbye


def timeouts(line: Line) -> None:
    line.after(53)        # silence three times at the main menu: a person helps
    line.answer("li_na")
    line.after(45)
    line.agent_hangs_up()
    line.after(4)
    line.hangup()         # gone before rating


def survey(line: Line) -> None:
    line.after(10)
    line.press("0")
    line.after(4)
    line.after(16)        # the first agent rung does not pick up
    line.answer(line.ringing())
    line.after(90)
    line.agent_hangs_up()
    line.after(4)
    line.press("3")
    line.after(20)


def vip(line: Line) -> None:
    line.after(12)
    line.answer("zhang_wei")  # the customer's own manager, offered the call first
    line.after(60)
    line.agent_hangs_up()
    line.after(4)
    line.press("1")
    line.after(10)


def platinum(line: Line) -> None:
    line.after(10)
    line.answer("zhang_wei")  # rung directly by a transfer
    line.after(30)
    line.agent_hangs_up()
    line.after(30)            # no rating: the survey gives up after two silences


def hangs_up_in_queue(line: Line) -> None:
    line.after(10)
    line.press("0")
    line.after(75)        # nobody answers; the queue announces the place in line (not logged)
    line.hangup()


def billing_timeout(line: Line) -> None:
    line.after(10)
    line.press("1")
    line.after(4)
    line.press("1")       # no reply within 3 s; it comes late and is ignored
    line.after(12)
    line.press("0")
    line.after(6)
    line.answer("li_na")
    line.after(30)
    line.agent_hangs_up()
    line.after(1)
    line.hangup()


def billing_refused(line: Line) -> None:
    line.after(10)
    line.press("1")
    line.after(4)
    line.press("2")
    line.after(4)
    line.press("13900139000#")  # another number; the billing system refuses the connection
    line.after(8)
    line.hangup()


def complaint(line: Line) -> None:
    line.after(10)
    line.press("2")
    line.after(5)
    line.press("1")       # a ticket is opened and its number said
    line.after(12)
    line.answer("wang_fang")
    line.after(120)
    line.agent_hangs_up()
    line.after(3)
    line.press("2")
    line.after(10)


def lost_phone(line: Line) -> None:
    line.after(10)
    line.press("4")
    line.after(4)
    line.press("13800138000")
    line.after(4)
    line.press("110105199001011232")
    line.after(10)
    line.press("1")       # confirmed: the switch suspends the line, the CRM records it
    line.after(12)
    line.hangup()


def vip_overflow(line: Line) -> None:
    line.after(140)       # nobody at the VIP desk for two minutes: the general queue
    line.answer("li_na")
    line.after(40)
    line.agent_hangs_up()
    line.after(4)
    line.press("1")
    line.after(10)


def _http_stubs(test_file: dict) -> None:
    assert test_file["http"] == [{"method": "GET", "url": "/v1/accounts/13800138000/balance", "status": 200,
                                  "body": BALANCE}]


def _crm_with_followed_manager(test_file: dict) -> None:
    assert test_file["crm"] == {
        "AccountManager": [{"id": 1, "name": "张伟", "phone": "13900000001", "agent": "zhang_wei"}],
        "Customer": [{"id": 12, "name": "钱金卡", "phone": "13800000002", "tier": "gold", "manager": 1,
                      "status": "active"}]}


def _three_menu_timeouts(test_file: dict) -> None:
    assert test_file["tests"][0]["steps"].count({"wait": "8s"}) == 3


def _refused_stub(test_file: dict) -> None:
    assert test_file["http"] == [{"method": "GET", "url": "/v1/accounts/13900139000/balance", "fail": "refused"}]
    assert {"press": "13900139000"} in test_file["tests"][0]["steps"]  # the # after a full number was ignored


def _timeout_stub(test_file: dict) -> None:
    assert test_file["http"] == [{"method": "GET", "url": "/v1/accounts/13800138000/balance", "fail": "timeout"}]
    assert {"wait": "3s"} in test_file["tests"][0]["steps"]


def _ticket_heard_up_to_its_number(test_file: dict) -> None:
    assert {"hear": "您的投诉已登记,工单号是"} in test_file["tests"][0]["steps"]
    assert test_file["crm"]["Customer"][0]["balance"] == "58.20"
    assert test_file["crm"]["Customer"][0]["joined"] == dt.date(2019, 5, 1)


def _three_announcements(test_file: dict) -> None:
    steps = test_file["tests"][0]["steps"]
    assert steps[3:7] == [{"hear": "position"}] * 3 + [{"answer": "li_na"}]


WAYS = {
    "self-service balance from the billing system": Way(
        "13800138000", balance, {"ended": "hangup"},
        ("flows/self_service.flow", "的当前余额为", "的余额为"),
        replies={"/balance": (200, BALANCE)}, check=_http_stubs),
    "silence at the main menu, then a person": Way(
        "01088886666", timeouts, {"queue": "general", "agent": "li_na", "ended": "caller_hangup"},
        ("flows/hotline.flow", "对不起,没有听到您的按键。", "抱歉,没有听到您的按键。"), agents=("li_na", "wang_fang"),
        check=_three_menu_timeouts),
    "the general queue, an agent and a poor rating": Way(
        "13800000003", survey, {"queue": "general", "agent": "wang_fang", "ended": "hangup",
                                "created": {"SurveyResponse": [{"phone": "13800000003", "rating": "dissatisfied",
                                                                "follow_up": True}]}},
        ("flows/survey.flow", "非常抱歉没能让您满意", "很抱歉没能让您满意"), agents=("li_na", "wang_fang")),
    "a gold customer looked up and offered to the manager": Way(
        "13800000002", vip, {"queue": "vip", "agent": "zhang_wei", "ended": "hangup",
                             "created": {"SurveyResponse": [{"phone": "13800000002", "rating": "satisfied"}]}},
        ("flows/hotline.flow", "尊敬的金卡客户", "尊贵的金卡客户"), agents=("zhang_wei", "chen_jing", "li_na"),
        check=_crm_with_followed_manager),
    "a platinum customer transferred to the manager": Way(
        "13800000001", platinum, {"agent": "zhang_wei", "ended": "hangup"},
        ("flows/hotline.flow", "正在为您接通专属客户经理", "正在为您接通客户经理"), agents=("zhang_wei",)),
    "the caller hangs up in the queue": Way(
        "13800138000", hangs_up_in_queue, {"queue": "general", "ended": "caller_hangup"},
        ("flows/hotline.flow", "正在为您转接人工服务,请稍候。", "正在转接人工服务。")),
    "the billing system does not answer in time": Way(
        "13800138000", billing_timeout, {"queue": "general", "agent": "li_na", "ended": "caller_hangup"},
        ("flows/self_service.flow", "话费查询系统暂时繁忙", "查询系统繁忙"), agents=("li_na",),
        replies={"/balance": ("late", (200, BALANCE))}, check=_timeout_stub),
    "the billing system refuses the connection": Way(
        "13800138000", billing_refused, {"ended": "caller_hangup"},
        ("flows/self_service.flow", "请输入要查询的 11 位手机号码", "请输入要查询的手机号码"),
        replies={"/balance": "refused"},
        check=_refused_stub),
    "a complaint opens a ticket and reaches the complaints desk": Way(
        "13800138000", complaint, {"queue": "complaints", "agent": "wang_fang", "ended": "hangup", "created": {
            "Ticket": [{"customer": 11, "caller_phone": "13800138000", "category": "complaint",
                        "description": "电话投诉,详情由坐席记录"}],
            "SurveyResponse": [{"phone": "13800138000", "rating": "neutral"}]}},
        ("flows/hotline.flow", "您的投诉已登记", "投诉已登记"), agents=("wang_fang",),
        check=_ticket_heard_up_to_its_number),
    "a lost phone suspended at the switch and in the CRM": Way(
        "13800138000", lost_phone, {"updated": {"Customer": [{"status": "suspended"}]}},
        ("flows/self_service.flow", "已成功挂失停机", "已挂失停机"), replies={"/suspend": (200, {"result": "ok"})},
        warning="the caller hung up while '感谢您致电星海通信,再见。' played; prompts take no time in flow tests, "
                "so the test does not say how the call ended"),
    "a gold customer nobody at the VIP desk answers": Way(
        "13800000006", vip_overflow, {"queue": "general", "agent": "li_na", "ended": "hangup",
                                      "created": {"SurveyResponse": [{"phone": "13800000006", "rating": "satisfied"}]}},
        ("flows/queues.flow", "max wait 2m then queue general", "max wait 1m then queue general"), agents=("li_na",),
        check=_three_announcements),
}


@pytest.fixture(scope="module")
def bundle():
    return compile_project([ROOT / "flows", ROOT / "schemas"]).bundle


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the example project without its own tests, so only the made test runs."""
    copied = tmp_path / "project"
    shutil.copytree(ROOT / "flows", copied / "flows", ignore=shutil.ignore_patterns("*.test.yaml"))
    shutil.copytree(ROOT / "schemas", copied / "schemas")
    shutil.copy(ROOT / "flowdesk.yaml", copied / "flowdesk.yaml")
    return copied


def from_call(project: Path, database_url: str, *more: str, call: str = CALL) -> int:
    return main(["test", "--from-call", call, "--db", database_url, *more,
                 str(project / "flows"), str(project / "schemas")])


def change(project: Path, file: str, text: str, replacement: str) -> None:
    path = project / file
    source = path.read_text(encoding="utf-8")
    assert text in source
    path.write_text(source.replace(text, replacement), encoding="utf-8")


@pytest.mark.parametrize("name", WAYS)
def test_a_logged_call_becomes_a_test_that_passes_until_the_flow_changes(name, bundle, project, database_url, capsys):
    way = WAYS[name]
    line = Line(bundle, way.caller, agents=way.agents, replies=way.replies)
    way.script(line)
    assert line.state.wait == "ended", f"the call did not end: {line.state.wait}"
    line.log(database_url)
    out = project / "flows" / "from_call.test.yaml"

    assert from_call(project, database_url, "-o", str(out)) == 0
    text = out.read_text(encoding="utf-8")
    assert SECRET not in text
    warned = f"warning: {way.warning}\n" if way.warning else ""
    assert capsys.readouterr().err == f"{warned}wrote {out} ({len(yaml.safe_load(text)['tests'][0]['steps'])} steps)\n"
    test_file = yaml.safe_load(text)
    (test,) = load_tests(out)
    assert test.expect.model_dump(exclude_none=True) == way.expect
    assert test.caller == way.caller and test.at == T0.replace(tzinfo=None) and test.timezone == "Asia/Shanghai"
    assert test.agents == ([line.state.agent] if line.state.agent else [])
    way.check(test_file)

    assert main(["test", str(out)]) == 0, capsys.readouterr().out
    assert "1 passed, 0 failed" in capsys.readouterr().out

    change(project, *way.change)
    assert main(["test", str(out)]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_the_secret_was_sent_on_the_call_and_is_masked_in_its_test(bundle, project, database_url, capsys):
    line = Line(bundle, "13800138000", replies={"/balance": (200, BALANCE)})
    balance(line)
    line.log(database_url)
    assert line.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    assert from_call(project, database_url) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"# Call {CALL} from 13800138000") and SECRET not in printed
    assert yaml.safe_load(printed)["tests"][0]["steps"][:4] == [
        {"hear": "sounds/xinghai-jingle"}, {"hear": "您好,欢迎致电星海通信客服热线。为了提升服务质量,您的通话可能会被录音。"},
        {"hear": "话费余额查询请按1,投诉与建议请按2,业务办理请按3,手机挂失请按4,服务时间查询请按5,人工服务请按0。"
                 "For English service, please press 9. 重听请按星号键。"},
        {"press": "1"}]


# ------------------------------------------------------------------ what a user can get wrong

def test_an_unknown_call_names_the_database_searched(bundle, project, database_url, capsys):
    Line(bundle, "13800138000").log(database_url)
    assert from_call(project, database_url, call="no-such-call") == 2
    err = capsys.readouterr().err
    assert "error: there is no call 'no-such-call' in the event log at" in err
    assert ("flowdesk.db" if database_url.startswith("sqlite") else "127.0.0.1:5432/test") in err
    assert "Traceback" not in err


def test_a_call_logged_without_its_events_says_so(bundle, project, database_url, capsys):
    line = Line(bundle, "13800138000", log_events=False)
    line.after(10)
    line.hangup()
    line.log(database_url)
    out = project / "flows" / "from_call.test.yaml"
    assert from_call(project, database_url, "-o", str(out)) == 2
    assert f"error: call '{CALL}' was logged without its events (the call centre ran with event logging off)" \
        in capsys.readouterr().err
    assert not out.exists()


def test_a_missing_sqlite_database_is_not_created(project, tmp_path, capsys):
    missing = tmp_path / "nowhere" / "flowdesk.db"
    assert from_call(project, f"sqlite:///{missing}") == 2
    assert f"error: there is no event log at sqlite:///{missing}: no such file" in capsys.readouterr().err
    assert not missing.exists()


def test_a_missing_postgresql_database_is_named_without_its_password(project, capsys):
    url = "postgresql://postgres:pa55word@127.0.0.1:5432/flowdesk_no_such_database"
    assert from_call(project, url) == 2
    err = capsys.readouterr().err
    assert "error: cannot read the event log at postgresql://postgres:***@127.0.0.1:5432/flowdesk_no_such_database: " \
        in err
    assert "does not exist" in err and "pa55word" not in err and "Traceback" not in err


def test_a_call_on_another_bundle_is_written_with_a_warning(bundle, project, database_url, capsys):
    line = Line(bundle, "01088886666")
    line.after(10)
    line.press("9")
    line.log(database_url)
    change(project, "flows/hotline.flow", "服务时间查询请按5", "营业时间查询请按5")  # the menu changed since
    out = project / "flows" / "from_call.test.yaml"
    assert from_call(project, database_url, "-o", str(out)) == 0
    err = capsys.readouterr().err
    assert f"warning: call {CALL} ran on bundle {bundle.hash}, the project compiles to sha256:" in err
    assert out.exists()
    assert main(["test", str(out)]) == 1  # it heard the menu as it was
    assert "expected to hear '话费余额查询请按1,投诉与建议请按2,业务办理请按3,手机挂失请按4,服务时间查询请按5" \
        in capsys.readouterr().out


def test_an_existing_file_is_kept_unless_forced(bundle, project, database_url, capsys):
    line = Line(bundle, "01088886666")
    line.after(10)
    line.press("9")
    line.log(database_url)
    out = project / "flows" / "from_call.test.yaml"
    out.write_text("# edited by hand\n", encoding="utf-8")
    assert from_call(project, database_url, "-o", str(out)) == 2
    assert f"error: {out} already exists; give --force to replace it" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "# edited by hand\n"
    assert from_call(project, database_url, "-o", str(out), "--force") == 0
    (test,) = load_tests(out)
    assert test.expect.transferred_to == "4008001009" and test.number == "4008001000"


def test_output_options_without_from_call_are_a_usage_error(project, capsys):
    assert main(["test", "-o", str(project / "x.test.yaml"), str(project / "flows")]) == 2
    assert "error: -o and --force go with --from-call" in capsys.readouterr().err


SECRET_IN_ADDRESS = """flow main {
    entry number "10086"
    answer
    http r = GET "http://billing.example/v1/balance?key=" + secret("API_KEY")
        timeout 3s
        returns {
            amount: money
        }
        else {
            say "查询失败"
            hangup
        }
    say "余额 {r.amount} 元"
    hangup
}
"""


def test_an_address_with_a_secret_is_stubbed_for_its_method(tmp_path, capsys):
    """The log masks the whole address; the test's request carries the simulated secret instead."""
    (tmp_path / "main.flow").write_text(SECRET_IN_ADDRESS, encoding="utf-8")
    (tmp_path / "flowdesk.yaml").write_text("secrets: [API_KEY]\n", encoding="utf-8")
    small = compile_project([tmp_path]).bundle
    asked = []
    center = CallCenter(small, epoch=T0, prompt_ms=lambda command: 1500,
                        options=EngineOptions(secrets=lambda name: SECRET),
                        http=lambda request: asked.append(request.url) or (200, {"amount": "12.50"}))  # at once
    center.start_call(CALL, caller="13800138000", dialed="10086", at=T0)
    center.advance(T0 + dt.timedelta(seconds=10))
    database_url = f"sqlite:///{tmp_path / 'flowdesk.db'}"
    EventLog(database_url).write(center.take_rows())
    assert asked == [f"http://billing.example/v1/balance?key={SECRET}"]

    out = tmp_path / "from_call.test.yaml"
    assert main(["test", "--from-call", CALL, "--db", database_url, "-o", str(out), str(tmp_path)]) == 0
    assert "warning: the address of a GET request carried a secret and is masked in the log: its stub answers " \
           "any GET request the test makes" in capsys.readouterr().err
    text = out.read_text(encoding="utf-8")
    assert SECRET not in text
    assert yaml.safe_load(text)["http"] == [{"method": "GET", "url": "", "status": 200, "body": {"amount": "12.50"}}]
    assert main(["test", str(out)]) == 0
    change(tmp_path, "main.flow", "余额 {r.amount} 元", "余额是 {r.amount} 元")
    assert main(["test", str(out)]) == 1
