"""The simulator panel: a supervisor places test calls to the example hotline from the studio.

The call runs on the project's files as saved now, with simulated time and an in-memory CRM: the
transcript shows the prompts, the graph lights the steps taken, the tables show the call's row and
the records it wrote, and the studio's database is left as it was."""
from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import text as sql

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

from starlette.testclient import TestClient  # noqa: E402

from studio import simulate  # noqa: E402
from test_studio_app import MONDAY_10, Clock, log_in, studio_app  # noqa: E402

HOTLINE = "4008001000"
MENU = "话费余额查询请按1"
COMPLAINTS = "投诉请按1,意见和建议请按2"


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("FLOWDESK_SECRET", "simulate-tests")


@pytest.fixture
def app(tmp_path):
    return studio_app(tmp_path, Clock(MONDAY_10))


def supervisor(app) -> tuple[TestClient, str]:
    client = TestClient(app)
    log_in(client, "zhou_qiang")
    page = client.get("/workspace/simulate")
    assert page.status_code == 200, page.text
    return client, re.search(r'"X-CSRF-Token": "([^"]+)"', page.text).group(1)


def start(client, token, *, target=f"number:{HOTLINE}", caller="13800138000", date="2026-11-23", time="10:00",
          **more):
    return client.post("/workspace/simulate/start", data={"csrf_token": token, "target": target, "caller": caller,
                                                           "date": date, "time": time, **more},
                       follow_redirects=False)


def started(client, token, **options) -> str:
    """The call page's address of a call just started."""
    answer = start(client, token, **options)
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def act(client, token, where: str, **form):
    return client.post(f"{where}/act", data=form, headers={"X-CSRF-Token": token})


def said(page: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<span class="said">([^<]*)</span>', page)]


def lit(page: str) -> dict[str, str]:
    """step id -> the classes of its node in the page's pictures."""
    return {html.unescape(title): cls for cls, title in
            re.findall(r'<g id="node\d+" class="([^"]*)">\s*<title>([^<]*)</title>', page)}


def fact(page: str, label: str) -> str:
    return html.unescape(re.search(rf'data-fact="{label}">([^<]*)<', page).group(1))


def database_counts(app) -> tuple[int, int]:
    with app.state.studio.engine.connect() as connection:
        return tuple(connection.execute(sql(f"select count(*) from {table}")).scalar()
                     for table in ("calls", "call_events"))


def test_the_start_page_offers_the_hotline_numbers_and_the_project_time(app):
    client, _ = supervisor(app)
    page = client.get("/workspace/simulate").text
    assert f'value="number:{HOTLINE}"' in page and 'value="flow:hotline"' in page
    assert 'value="2026-11-23"' in page and 'value="10:00"' in page and "Asia/Shanghai" in page
    assert 'class="current" aria-current="page">模拟来电' in page


def test_a_monday_morning_call_plays_the_menu_and_lights_the_steps_taken(app):
    client, token = supervisor(app)
    where = started(client, token)
    page = client.get(where).text
    assert any(MENU in text for text in said(page))
    nodes = lit(page)
    assert nodes["answer@1"] == "node lit" and nodes["lookup@6"] == "node lit"
    assert nodes["main_menu"] == "node lit current"
    assert nodes["say@14"] == "node"                     # "没有听到您的按键" not played
    assert fact(page, "结果") == "通话中" and fact(page, "被叫") == HOTLINE


def test_a_complaint_in_hours_creates_a_ticket_and_rings_the_complaints_desk(app):
    client, token = supervisor(app)
    before = database_counts(app)
    where = started(client, token)
    assert COMPLAINTS in " ".join(said(act(client, token, where, action="press", key="2").text))
    page = act(client, token, where, action="press", key="1").text
    assert "您的投诉已登记,工单号是 1,请您记录。" in said(page)
    assert "正在为您转接投诉专席,请稍候。" in said(page)
    assert 'data-entity="Ticket" data-verb="新建"' in page
    assert re.search(r'<tr data-field="category"><th title="category">类别</th><td>投诉\(complaint\)</td>', page)
    assert fact(page, "队列") == "complaints"
    assert 'id="sim-answer"' in page and not re.search(r'id="sim-answer"[^>]*disabled', page)
    nodes = lit(page)
    assert nodes["complaints"] == "node lit" and nodes["create@19"] == "node lit"

    page = act(client, token, where, action="answer").text
    assert fact(page, "坐席") == "wang_fang" and "与坐席 王芳(wang_fang) 通话中" in page
    page = act(client, token, where, action="hangup").text
    assert fact(page, "结果") == "主叫挂机(caller_hangup)" and 'data-over="yes"' in page
    assert database_counts(app) == before               # nothing reached the studio's database


def test_a_complaint_at_night_goes_to_voicemail(app):
    client, token = supervisor(app)
    where = started(client, token, time="23:30")
    act(client, token, where, action="press", key="2")
    page = act(client, token, where, action="press", key="1").text
    assert "现在是非人工服务时间,请在提示音后说明您的问题,投诉专员将在上班后回电。" in said(page)
    assert "进入留言信箱 complaints:主叫留言,等待回电" in page
    assert fact(page, "结果") == "留言(voicemail)" and 'data-over="yes"' in page


def test_silence_waits_to_the_next_thing_and_more_silence_hands_over_to_an_agent(app):
    client, token = supervisor(app)
    where = started(client, token)
    page = act(client, token, where, action="wait").text
    assert "对不起,没有听到您的按键。" in said(page)
    act(client, token, where, action="wait", amount="10s")
    page = act(client, token, where, action="wait", amount="10s").text
    assert "正在为您转接人工服务,请稍候。" in said(page)
    assert lit(page)["to_agent"].startswith("node lit")


def test_a_seeded_gold_customer_skips_the_menu(app):
    client, token = supervisor(app)
    records = 'Customer:\n  - {name: 张三, phone: "13800138000", tier: gold}\n'
    page = client.get(started(client, token, records=records)).text
    assert "尊敬的金卡客户张三,您好,正在为您接通 VIP 专席。" in said(page)
    assert lit(page)["main_menu"] == "node"


def test_a_flow_can_be_entered_directly(app):
    client, token = supervisor(app)
    page = client.get(started(client, token, target="flow:hotline")).text
    assert fact(page, "被叫") == "(直接进入流程)" and any(MENU in text for text in said(page))


def test_only_the_chosen_agents_are_ready(app):
    client, token = supervisor(app)
    where = started(client, token, agents_listed="1", agents=["li_na"])
    act(client, token, where, action="press", key="0")
    page = act(client, token, where, action="wait", amount="5s").text
    assert "坐席 李娜(li_na) 振铃" in page


def test_the_draft_on_disk_is_what_runs(app):
    project = app.state.studio.project
    hotline = project / "flows" / "hotline.flow"
    hotline.write_text(hotline.read_text(encoding="utf-8").replace("投诉与建议请按2", "投诉请按2", 1), encoding="utf-8")
    client, token = supervisor(app)
    page = client.get(started(client, token)).text
    assert any("投诉请按2" in text for text in said(page))


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("form, words", [
    ({"target": "number:12345"}, "没有号码或流程“12345”"),
    ({"target": "flow:nowhere"}, "没有号码或流程“nowhere”"),
    ({"caller": "abc"}, "主叫号码“abc”不对"),
    ({"caller": ""}, "主叫号码“”不对"),
    ({"date": "2026-13-40"}, "日期“2026-13-40”或时间“10:00”不对"),
    ({"time": "25:61"}, "日期“2026-11-23”或时间“25:61”不对"),
    ({"records": "Customer: [ {"}, "预置记录不是正确的 YAML"),
    ({"records": "Custmer: []"}, "预置记录有误:there is no entity 'Custmer'"),
    ({"agents_listed": "1", "agents": ["nobody"]}, "没有坐席“nobody”"),
])
def test_a_bad_start_form_says_what_is_wrong_and_starts_nothing(app, form, words):
    client, token = supervisor(app)
    answer = start(client, token, **form)
    assert answer.status_code == 422
    assert words in html.unescape(answer.text)
    assert "Traceback" not in answer.text
    assert len(simulate.sessions_of_app(app)) == 0


def test_a_project_with_errors_is_shown_and_not_simulated(app):
    hotline = app.state.studio.project / "flows" / "hotline.flow"
    hotline.write_text(hotline.read_text(encoding="utf-8").replace("-> to_agent", "-> to_agnet", 1), encoding="utf-8")
    client, token = supervisor(app)
    page = client.get("/workspace/simulate").text
    assert "改正之前不能模拟来电" in page and "to_agnet" in page and 'id="sim-go"' not in page
    answer = start(client, token)
    assert answer.status_code == 422 and "不能开始模拟" in answer.text


@pytest.mark.parametrize("form, words", [
    ({"action": "press", "key": "a"}, "按键“a”不对"),
    ({"action": "press", "key": ""}, "没有输入按键"),
    ({"action": "wait", "amount": "soon"}, "等待时长“soon”不对"),
    ({"action": "wait", "amount": "2h"}, "一次最多等待 1 小时"),
    ({"action": "answer"}, "现在没有坐席的电话在响"),
    ({"action": "agent-hangup"}, "现在没有坐席在通话中"),
    ({"action": "dance"}, "不认识的操作“dance”"),
])
def test_a_bad_action_is_refused_with_the_panel_and_changes_nothing(app, form, words):
    client, token = supervisor(app)
    where = started(client, token)
    before = said(client.get(where).text)
    answer = act(client, token, where, **form)
    assert answer.status_code == 422
    assert words in html.unescape(answer.text) and 'id="call"' in answer.text
    assert said(answer.text) == before


def test_an_ended_call_takes_no_more_keys(app):
    client, token = supervisor(app)
    where = started(client, token)
    act(client, token, where, action="hangup")
    answer = act(client, token, where, action="press", key="1")
    assert answer.status_code == 422 and "这通模拟来电已经结束" in answer.text


def test_a_call_that_has_gone_says_so(app):
    client, token = supervisor(app)
    for address in ("/workspace/simulate/nosuchcall",):
        page = client.get(address)
        assert page.status_code == 404 and "这通模拟来电已不存在" in page.text
        answer = act(client, token, address, action="press", key="1")
        assert answer.status_code == 404 and 'id="call"' in answer.text and "重新开始一通" in answer.text


def test_another_users_call_is_not_found(app):
    client, token = supervisor(app)
    where = started(client, token)
    other = TestClient(app)
    log_in(other, "zhou_qiang")      # a second log-in of the same user sees it ...
    assert other.get(where).status_code == 200
    session = simulate.sessions_of_app(app).get("zhou_qiang", where.rsplit("/", 1)[1])
    session.user = "someone_else"    # ... and a call of someone else is not there for them
    assert other.get(where).status_code == 404


def test_agents_may_not_simulate(app):
    client = TestClient(app)
    log_in(client, "li_na")
    page = client.get("/workspace/simulate")
    assert page.status_code == 403 and "值班主管" in page.text


def test_sessions_are_bounded_per_user_and_expire_when_unused():
    now = [0.0]
    sessions = simulate.Sessions(clock=lambda: now[0])
    made = [sessions.add(simulate.Session(str(n), "zhou_qiang", sim=None, target="")) for n in range(5)]
    assert [sessions.get("zhou_qiang", s.id) is not None for s in made] == [False, False, True, True, True]
    assert sessions.get("li_na", made[4].id) is None
    now[0] = simulate.IDLE_S - 1
    assert sessions.get("zhou_qiang", "4") is not None       # touched: it lives on
    now[0] = 2 * simulate.IDLE_S
    assert sessions.get("zhou_qiang", "4") is None and len(sessions) == 0


def test_a_prompt_can_be_heard(app):
    client, token = supervisor(app)
    where = started(client, token)
    page = client.get(where).text
    if not simulate.audio_available():
        assert 'id="sim-no-audio"' in page
        return
    speech = re.findall(r'data-src="([^"]+/speech/\d+)"', page)
    assert speech
    wav = client.get(speech[0])
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav" and wav.content[:4] == b"RIFF"
    assert client.get(f"{where}/speech/0").status_code == 404     # the first entry is not a prompt


def test_without_espeak_the_page_says_audio_is_unavailable(app, monkeypatch):
    client, token = supervisor(app)
    where = started(client, token)
    monkeypatch.setattr(simulate, "audio_available", lambda: False)
    page = client.get(where).text
    assert "提示不能朗读,只以文字显示" in page and "data-src=" not in page and said(page)


def events(page: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<span class="event" data-what="[^"]*">([^<]*)</span>', page)]


def test_the_transcript_words_events_in_chinese(app):
    client, token = supervisor(app)
    where = started(client, token, agents_listed="1", agents=["li_na"])
    act(client, token, where, action="press", key="1")
    act(client, token, where, action="press", key="1")     # the balance: its HTTP request fails
    act(client, token, where, action="press", key="0")     # after the service: a person
    page = act(client, token, where, action="wait", amount="5s").text
    shown = events(page)
    assert shown[:3] == ["13800138000 来电,拨打 4008001000,进入流程 hotline;就绪坐席:李娜(li_na)",
                         "电话接通(应答)", "开始录音"]
    assert any(e.startswith("外部请求 GET http://127.0.0.1:8089/v1/accounts/13800138000/balance:失败") for e in shown)
    assert "进入队列 general「综合服务」,等待音乐 hold/default" in shown
    assert "坐席 李娜(li_na) 振铃:可点“坐席接听”,或等待" in shown
    page = act(client, token, where, action="answer").text
    assert "与坐席 李娜(li_na) 接通" in events(page)
    page = act(client, token, where, action="agent-hangup").text
    assert "坐席 李娜(li_na) 离开通话" in events(page)
    assert not [e for e in events(page) if re.search(r"[a-z]{4,} [a-z]{3,}", e) and "http" not in e]  # no English sentences
