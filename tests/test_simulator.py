"""Scripted calls through the example hotline in the terminal simulator (`flowdesk call`)."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from compiler import compile_project
from runtime import commands as c
from runtime.simulator import SimulatorError, Simulator, load_records, parse_moment, play, prompt_ms

ROOT = Path(__file__).resolve().parents[1]
SH = ZoneInfo("Asia/Shanghai")
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SH)
MENU = "话费余额查询请按1"


@pytest.fixture(scope="module")
def bundle():
    result = compile_project([ROOT / "flows", ROOT / "schemas"])
    assert result.bundle is not None, result.errors
    return result.bundle


def call(bundle, *lines, at=MONDAY_10, **options) -> tuple[Simulator, list[str]]:
    """The whole transcript of a call: its start, each line, and the summary."""
    sim = Simulator(bundle, flow="hotline", caller="13800138000", at=at, **options)
    out = sim.start()
    for line in lines:
        out += sim.feed(line)
    return sim, out + sim.finish()


def said(out: list[str]) -> list[str]:
    return [line.split("🔊 ", 1)[1] for line in out if "🔊 " in line]


def test_the_greeting_plays_and_the_caller_gets_the_main_menu(bundle):
    sim = Simulator(bundle, flow="hotline", caller="13800138000", at=MONDAY_10)
    out = sim.start()
    assert out[1:] == [
        "[10:00:00] the call is answered",
        "[10:00:00] 🎵 sounds/xinghai-jingle",
        "[10:00:01] 🔊 您好,欢迎致电星海通信客服热线。为了提升服务质量,您的通话可能会被录音。",
        "[10:00:10] recording the call",
        "[10:00:10] 🔊 话费余额查询请按1,投诉与建议请按2,业务办理请按3,手机挂失请按4,服务时间查询请按5,"
        "人工服务请按0。For English service, please press 9. 重听请按星号键。",
    ]
    assert not sim.over


def test_balance_option_runs_without_outside_systems(bundle):
    sim, out = call(bundle, "1", "1", "hangup", plain_text=True)
    assert "> say: 查询本机号码请按1,查询其他号码请按2。" in " ".join(out)
    http = [line for line in out if " http " in line]
    assert http == ["[10:00:39.500] http GET http://127.0.0.1:8089/v1/accounts/13800138000/balance: "
                    "failed (no outside systems in the simulator)"]
    assert any(line.endswith("> say: 抱歉,话费查询系统暂时繁忙,请稍后再试。") for line in out)
    assert out[-4].startswith("call ended: caller_hangup after ")
    assert sim.center.calls["call-1"].state.history[-1].startswith("hotline/")  # back in the hotline


def test_silence_repeats_the_menu_then_a_person_helps(bundle):
    sim, out = call(bundle, "wait 10s", "wait 10s", "wait 10s", agents=["li_na"])
    menu_done = MONDAY_10 + dt.timedelta(seconds=10, milliseconds=prompt_ms(c.Say(text=said(out)[1], prompt_id="")))
    sorry = [line for line in out if "没有听到您的按键" in line]
    assert sorry[0].startswith(f"[{(menu_done + dt.timedelta(seconds=8)).strftime('%H:%M:%S')}")
    assert len(sorry) == 2 and sum(MENU in text for text in said(out)) == 3
    assert "正在为您转接人工服务,请稍候。" in said(out)
    assert any(line.endswith("waiting in queue general (综合服务), music hold/default") for line in out)
    assert any(line.endswith("ringing agent li_na (李娜): type answer, or wait") for line in out)


def test_an_agent_answers_then_the_caller_rates_the_call(bundle):
    sim, out = call(bundle, "0", "wait 5s", "answer", "wait 2m", "agent-hangup", "1")
    assert "[10:00:43.250] connected to li_na (李娜)" in out
    assert "[10:02:43.250] li_na (李娜) left the call" in out
    assert said(out)[-3:] == ["请您对刚才的服务进行评价:满意请按1,一般请按2,不满意请按3。", "感谢您的评价。",
                              "感谢您致电星海通信,再见。"]
    assert out[-4] == "call ended: hangup after 2m56s at 10:02:56.250"
    assert out[-3:-1] == ["  queue: general", "  agent: li_na (李娜)"]
    assert out[-1].startswith('  created SurveyResponse 1: {') and '"rating": "satisfied"' in out[-1]
    assert sim.over and sim.feed("1") == []


def test_a_caller_who_hangs_up_in_the_queue(bundle):
    sim, out = call(bundle, "0", "wait 30s", "hangup", agents=[])
    assert not any("ringing" in line for line in out)
    assert any(line.endswith("waiting in queue general (综合服务), position 1, music hold/default") for line in out)
    assert out[-3:] == ["  queue: general", "  agent: none", "  records: none created or updated"]
    assert out[-4].startswith("call ended: caller_hangup")


def test_nobody_answers_the_ringing_agent_and_the_next_is_rung(bundle):
    sim, out = call(bundle, "0", "wait 15s", "hangup", agents=["li_na", "wang_fang"])
    rung = [line.split("ringing agent ")[1].split(" ")[0] for line in out if "ringing agent" in line]
    assert rung == ["li_na", "wang_fang"]
    assert any(line.endswith("li_na (李娜) stops ringing") for line in out)


def test_a_complaint_at_night_opens_a_ticket_and_takes_a_message(bundle):
    sim, out = call(bundle, "2", "1", at=dt.datetime(2026, 11, 23, 23, 0, tzinfo=SH))
    assert any("voicemail box complaints: the caller leaves a message, to be called back" in line for line in out)
    assert "您的投诉已登记,工单号是 1,请您记录。" in said(out)
    assert out[-4].startswith("call ended: voicemail (box complaints)")
    assert '"category": "complaint"' in out[-1] and out[-1].startswith("  created Ticket 1:")


def test_a_gold_customer_from_the_records_goes_to_their_manager(bundle):
    records = load_records(bundle, {
        "Customer": [{"id": 1, "name": "张三", "phone": 13800138000, "tier": "gold", "manager": 1}],
        "AccountManager": [{"id": 1, "name": "张伟", "phone": "13900000000", "agent": "zhang_wei"}],
    })
    assert records["Customer"][0]["phone"] == "13800138000"  # YAML gives a number; the field is a phone
    sim, out = call(bundle, "answer", records=records)
    assert "尊敬的金卡客户张三,您好,正在为您接通 VIP 专席。" in said(out)
    assert any(line.endswith("connected to zhang_wei (张伟)") for line in out)
    assert out[-3:-1] == ["  queue: vip", "  agent: zhang_wei (张伟)"]


@pytest.mark.parametrize("line, message", [
    ("x1", "'x1' is neither keys (0-9, * and #) nor a command; type help"),
    ("wait soon", "'soon' is not a duration such as 10s, 1m30s or 500ms"),
    ("answer", "no agent's phone is ringing for this call"),
    ("agent-hangup", "no agent is on the call"),
])
def test_lines_that_mean_nothing_say_why_and_change_nothing(bundle, line, message):
    sim = Simulator(bundle, flow="hotline", caller="13800138000", at=MONDAY_10)
    sim.start()
    before = sim.center.now, sim.center.calls["call-1"].state.step
    with pytest.raises(SimulatorError) as error:
        sim.feed(line)
    assert str(error.value) == message
    assert (sim.center.now, sim.center.calls["call-1"].state.step) == before


def test_help_lists_the_commands(bundle):
    sim = Simulator(bundle, flow="hotline", caller="1", at=MONDAY_10)
    sim.start()
    assert any(line.strip().startswith("wait 10s") for line in sim.feed("help"))


def test_a_script_stops_at_a_bad_line_and_still_says_where_the_call_went(bundle):
    shown, errors = [], []
    sim = Simulator(bundle, flow="hotline", caller="1", at=MONDAY_10)
    status = play(sim, ["5", "hello", "1"], shown.append, errors.append, scripted=True)
    assert status == 1
    assert errors == ["line 2: 'hello' is neither keys (0-9, * and #) nor a command; type help"]
    assert "< 5" in shown and "< 1" not in shown
    assert shown[-4].startswith("call ended: caller_hangup")


def test_wrong_options_are_refused_with_a_reason(bundle):
    with pytest.raises(SimulatorError, match=r"no flow 'hotlin' \(did you mean 'hotline'\?\)"):
        Simulator(bundle, flow="hotlin", caller="1", at=MONDAY_10)
    with pytest.raises(SimulatorError, match=r"no agent 'lina' \(did you mean 'li_na'\?\)"):
        Simulator(bundle, flow="hotline", caller="1", at=MONDAY_10, agents=["lina"])
    with pytest.raises(SimulatorError, match=r"Customer #1: Customer has no field 'phnoe' \(did you mean 'phone'\?\)"):
        load_records(bundle, {"Customer": [{"phnoe": "1"}]})
    with pytest.raises(SimulatorError, match=r"Customer #1: balance: \"lots\" is not an amount of money"):
        load_records(bundle, {"Customer": [{"balance": "lots"}]})


def test_moments_and_prompt_times():
    assert parse_moment("2026-11-23 21:30", "Asia/Shanghai", None) == dt.datetime(2026, 11, 23, 21, 30, tzinfo=SH)
    assert parse_moment(None, "UTC", lambda zone: dt.datetime(2026, 1, 1, tzinfo=zone)).tzinfo == ZoneInfo("UTC")
    with pytest.raises(SimulatorError, match="is not a date and time"):
        parse_moment("tonight", "Asia/Shanghai", None)
    with pytest.raises(SimulatorError, match="is not a time zone"):
        parse_moment(None, "Mars/Olympus", None)
    assert prompt_ms(c.Say(text="您好", prompt_id="p")) == 1000
    assert prompt_ms(c.Say(text="对不起,没有听到您的按键。", prompt_id="p")) == 3250
    assert prompt_ms(c.Play(sound="sounds/x", prompt_id="p")) == 1000


# ------------------------------------------------------------------ the console script, piped

def flowdesk(*args: str, script: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("flowdesk")
    return subprocess.run([str(exe), "call", *args], input=script, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"}, timeout=120)


def test_a_piped_script_is_a_call(tmp_path):
    crm = tmp_path / "records.yaml"
    crm.write_text("Customer:\n  - {id: 1, name: 李四, phone: \"13800138000\", tier: star}\n", encoding="utf-8")
    result = flowdesk("flows", "schemas", "--flow", "hotline", "--from", "13800138000", "--at", "2026-11-23 21:30",
                      "--crm", str(crm), "--agents", "li_na", script="0\nwait 5s\nanswer\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("[21:30:00] call from 13800138000 to flow hotline")
    assert "< 0" in lines and "< answer" in lines
    assert any(line.endswith("> say: 正在为您转接人工服务,请稍候。") for line in lines)
    assert any(line.endswith("connected to li_na (李娜)") for line in lines)
    assert lines[-4].startswith("call ended: caller_hangup") and lines[-2] == "  agent: li_na (李娜)"
    assert result.stderr == ""


def test_the_console_script_reports_errors_without_a_traceback():
    bad_at = flowdesk("flows", "--flow", "hotline", "--from", "1", "--at", "tonight", script="")
    assert bad_at.returncode == 2 and bad_at.stderr.startswith("error: --at 'tonight' is not a date and time")
    unknown = flowdesk("flows", "--flow", "hotlin", "--from", "1", script="")
    assert unknown.returncode == 1 and "there is no flow 'hotlin'" in unknown.stderr
    bad_line = flowdesk("flows", "--flow", "hotline", "--from", "1", script="1\nabc\n")
    assert bad_line.returncode == 1 and "error: line 2: 'abc' is neither keys" in bad_line.stderr
    assert "call ended: caller_hangup" in bad_line.stdout
    missing = flowdesk("nothere", "--flow", "hotline", "--from", "1", script="")
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr
    wrong_number = flowdesk("flows", "schemas", "--number", "12345", "--from", "1", script="")
    assert wrong_number.returncode == 1 and "12345" in wrong_number.stderr
    both = flowdesk("flows", "--flow", "hotline", "--number", "4008001000", "--from", "1", script="")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    assert all("Traceback" not in r.stderr for r in (bad_at, unknown, bad_line, missing, wrong_number, both))


def test_a_piped_call_to_a_dialled_number():
    result = flowdesk("flows", "schemas", "--number", "4008001000", "--from", "13800138000",
                      "--at", "2026-11-23 10:00", script="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("[10:00:00] call from 13800138000 to flow hotline")


def test_no_line_is_read_once_the_call_is_over(bundle):
    def typed():  # a terminal: reading another line would wait for the person
        yield from ["0", "answer", "quit"]
        raise AssertionError("read a line after the call was over")

    shown = []
    sim = Simulator(bundle, flow="hotline", caller="1", at=MONDAY_10)
    assert play(sim, typed(), shown.append, shown.append, scripted=False) == 0
    assert shown[-3:] == ["  queue: general", "  agent: li_na (李娜)", "  records: none created or updated"]


def test_the_summary_lists_records_updated(tmp_path):
    (tmp_path / "main.flow").write_text("""
entity Customer {
    phone: phone
    calls: number default 0
}
flow main {
    lookup customer = Customer where phone == caller else -> unknown
    update customer { calls = customer.calls + 1 }
    say "您好"
    hangup
    unknown: hangup
}
""", encoding="utf-8")
    bundle = compile_project([tmp_path]).bundle
    records = load_records(bundle, {"Customer": [{"id": 4, "phone": 13800138000, "calls": 2}]})
    sim = Simulator(bundle, flow="main", caller="13800138000", at=MONDAY_10, records=records, plain_text=True)
    out = sim.start()
    assert out[2:] == ["[10:00:00] > say: 您好", "[10:00:01] the flow hangs up",
                       "call ended: hangup after 1s at 10:00:01", "  queue: none", "  agent: none",
                       '  updated Customer 4: {"id": 4, "phone": "13800138000", "calls": "3"}']
    assert sim.over and sim.finish() == []


def test_a_simulated_call_is_written_to_the_event_log(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from runtime.storage import EventLog

    root = Path(__file__).resolve().parents[1]
    db = f"sqlite:///{tmp_path / 'log.db'}"
    exe = Path(sys.executable).with_name("flowdesk")
    result = subprocess.run([str(exe), "call", str(root / "flows"), str(root / "schemas"), "--flow", "hotline",
                             "--from", "13800138000", "--at", "2026-11-23 10:00", "--db", db],
                            input="0\nanswer\nagent-hangup\n1\n", capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    log = EventLog(db)
    import datetime as dt
    calls = log.calls(dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc), dt.datetime(2026, 11, 24, tzinfo=dt.timezone.utc))
    assert len(calls) == 1 and calls[0].test and calls[0].flow == "hotline"
    steps = [e.data["step_id"] for e in log.events(calls[0].id) if e.name == "StepEntered"]
    assert steps[0] == "answer@1" and len(steps) > 5
    visits = log.queue_visits(calls[0].started_at, calls[0].started_at + dt.timedelta(hours=1))
    assert [(v.queue, v.outcome) for v in visits] == [("general", "answered")]


# ------------------------------------------------------------------ the session as data (the studio's panel)

def test_a_call_to_a_number_runs_the_flow_that_number_enters(bundle):
    sim = Simulator(bundle, dialed="4008001000", caller="13800138000", at=MONDAY_10)
    sim.start()
    assert sim.flow == "hotline" and sim.call.dialed == "4008001000"
    with pytest.raises(SimulatorError, match=r"no flow answers the number '123' \(the numbers are: 4008001000"):
        Simulator(bundle, dialed="123", caller="13800138000", at=MONDAY_10)
    with pytest.raises(SimulatorError, match="give the flow, or the number dialled"):
        Simulator(bundle, caller="13800138000", at=MONDAY_10)


def test_what_was_shown_is_kept_as_entries_with_the_words_to_speak(bundle):
    sim = Simulator(bundle, flow="hotline", caller="13800138000", at=MONDAY_10)
    out = sim.start()
    assert [f"[{e.at.astimezone(SH).strftime('%H:%M:%S')}] {e.text}" for e in sim.entries] == out
    assert [e.sound for e in sim.entries if e.sound] == ["sounds/xinghai-jingle"]
    assert [e.spoken for e in sim.entries if e.spoken][1].startswith(MENU)


def test_the_steps_taken_and_the_step_the_call_is_at(bundle):
    sim = Simulator(bundle, flow="hotline", caller="13800138000", at=MONDAY_10)
    sim.start()
    assert sim.current == ("hotline", "main_menu")
    sim.feed("1")
    assert sim.current[0] == "balance_inquiry"
    assert ("hotline", "main_menu") in sim.visited and any(flow == "balance_inquiry" for flow, _ in sim.visited)
    assert sim.visited[:2] == [("hotline", "answer@1"), ("hotline", "play@2")]
    sim.finish()
    assert sim.current is None and sim.call.end_reason == "caller_hangup"


def test_the_ringing_agent_and_the_agent_on_the_call(bundle):
    sim = Simulator(bundle, flow="hotline", caller="13800138000", at=MONDAY_10, agents=["li_na"])
    sim.start()
    sim.feed("0")
    sim.feed("wait 5s")
    assert sim.ringing_agent == "li_na" and sim.agent_on_call is None
    sim.feed("answer")
    assert sim.ringing_agent is None and sim.agent_on_call == "li_na"
