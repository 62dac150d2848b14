"""Historical reports and staffing in the studio, over an event log seeded with known calls and
agent states, read on a fixed clock (Monday 23 November 2026, 10:00 in Shanghai).

The figures on the page and in the CSV must be the ones runtime.kpis (and `flowdesk report`)
compute for the same period; the staffing figures those of runtime.erlang.
"""
from __future__ import annotations

import datetime as dt
import re

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

from starlette.testclient import TestClient  # noqa: E402

from flowdesk.report import AGENT_COLUMNS, QUEUE_COLUMNS, agent_rows, queue_rows, render_csv  # noqa: E402
from runtime import erlang  # noqa: E402
from runtime.kpis import agent_kpis, queue_kpis  # noqa: E402
from runtime.storage import AgentState, Call, EventLog, QueueVisit  # noqa: E402
from studio import reports  # noqa: E402
from studio.app import create_app  # noqa: E402
from test_studio_app import MONDAY_10, PASSWORD, SHANGHAI, Clock, local, log_in, project  # noqa: E402

TARGETS = {"general": 20.0, "vip": 15.0, "complaints": 20.0, "business": 20.0}   # flows/queues.flow


@pytest.fixture(autouse=True, scope="module")
def secret():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLOWDESK_SECRET", "reports-tests")
        yield


def reports_app(folder, url: str):
    app = create_app(project(folder / "project"), db_url=url, extra_routes=reports.routes, clock=Clock(MONDAY_10))
    for name in app.state.studio.accounts.users:
        app.state.studio.accounts.set_password(name, PASSWORD)
    return app


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'studio.db'}"


def client_for(app, user: str) -> TestClient:
    client = TestClient(app)
    log_in(client, user)
    return client


# ------------------------------------------------------------------ the seeded history

def visit(n: int, queue: str, at: dt.datetime, outcome: str, wait_s: float, talk_s: float = 0, hold_s: float = 0,
          wrap_s: float = 0, agent: str | None = None) -> list:
    """A call and its wait in `queue`: entered at `at`, left after `wait_s`; an answered call then
    talks for `talk_s`, was held `hold_s` and wrapped up for `wrap_s` (its handle time is their sum)."""
    left = at + dt.timedelta(seconds=wait_s)
    answered = outcome == "answered"
    talk_end = left + dt.timedelta(seconds=talk_s) if answered else None
    return [Call(id=f"call-{n}", bundle_hash="test", flow="hotline", caller="13800138000", dialed="4008001000",
                 started_at=at - dt.timedelta(seconds=30), queue=queue, agent=agent),
            QueueVisit(call_id=f"call-{n}", queue=queue, enqueued_at=at, outcome=outcome, left_at=left,
                       agent=agent if answered else None, talk_ended_at=talk_end, hold_ms=int(hold_s * 1000),
                       wrapup_ended_at=talk_end + dt.timedelta(seconds=wrap_s) if answered else None)]


def seed(url: str) -> None:
    log = EventLog(url)
    log.write([
        *visit(1, "general", local(23, 8, 5), "answered", 10, talk_s=180, wrap_s=30, agent="li_na"),
        *visit(2, "general", local(23, 8, 20), "answered", 30, talk_s=260, hold_s=20, wrap_s=40, agent="wang_fang"),
        *visit(3, "general", local(23, 8, 40), "abandoned", 45),
        *visit(4, "general", local(23, 8, 50), "abandoned", 3),       # a short abandon: left out of the rates
        *visit(5, "general", local(23, 9, 10), "answered", 5, talk_s=100, wrap_s=20, agent="li_na"),
        *visit(6, "vip", local(23, 9, 20), "answered", 12, talk_s=300, agent="zhang_wei"),
        *visit(7, "vip", local(23, 9, 30), "overflow", 60),
        *visit(8, "general", local(22, 15, 0), "answered", 8, talk_s=90, wrap_s=10, agent="li_na"),   # Sunday
    ])
    log.write([AgentState(agent="li_na", state=state, reason=reason, at=at) for state, reason, at in [
        ("ready", None, local(23, 8, 0)),
        ("on_call", None, local(23, 8, 5) + dt.timedelta(seconds=10)),
        ("wrap_up", None, local(23, 8, 8) + dt.timedelta(seconds=10)),
        ("ready", None, local(23, 8, 8) + dt.timedelta(seconds=40)),
        ("not_ready", "break", local(23, 8, 30)),
        ("ready", None, local(23, 8, 45)),
    ]])
    log.engine.dispose()


def table(html: str, table_id: str) -> dict[tuple[str, str], dict[str, str]]:
    """The cells of a report table by (queue or agent, interval) and column."""
    body = re.search(rf'<table class="kpis" id="{table_id}">(.*?)</table>', html, re.S).group(1)
    out = {}
    for row in re.finditer(r'<tr data-(?:queue|agent)="([^"]+)" data-interval="([^"]+)">(.*?)</tr>', body, re.S):
        out[(row.group(1), row.group(2))] = dict(re.findall(r'data-column="(\w+)">([^<]*)</td>', row.group(3)))
    return out


def shown_percent(value):
    return "—" if value is None else f"{value * 100:.1f}%"


def shown_seconds(value):
    return "—" if value is None else f"{value:.1f}"


# ------------------------------------------------------------------ /reports

@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One studio over the seeded log for the tests that only read it (a studio takes seconds to start)."""
    folder = tmp_path_factory.mktemp("reports")
    url = f"sqlite:///{folder / 'studio.db'}"
    made = reports_app(folder, url)
    seed(url)
    made.state.url = url
    yield made
    made.state.studio.engine.dispose()


@pytest.fixture
def supervisor(app):
    return client_for(app, "zhou_qiang")


def check_figures_match_the_kpis(client: TestClient, url: str) -> None:
    """The page for Monday per hour shows, cell for cell, what runtime.kpis computes for that day up to now."""
    page = client.get("/reports", params={"from": "2026-11-23", "to": "2026-11-23", "interval": "hour"})
    assert page.status_code == 200, page.text
    since, now = local(23, 0), MONDAY_10
    log = EventLog(url)
    expected_queues = queue_kpis(log.queue_visits(since, now), "hour", SHANGHAI, TARGETS)
    expected_agents = agent_kpis(log.agent_states(now), since, now, "hour", SHANGHAI)
    log.engine.dispose()

    queues = table(page.text, "queue-table")
    assert len(queues) == len(expected_queues) == 3
    for k in expected_queues:
        cells = queues[(k.queue, k.start.strftime("%Y-%m-%d %H:%M"))]
        assert cells == {
            "offered": str(k.offered), "answered": str(k.answered), "abandoned": str(k.abandoned),
            "short_abandoned": str(k.short_abandoned), "overflowed": str(k.overflowed),
            "answer_rate": shown_percent(k.answer_rate), "service_level": shown_percent(k.service_level),
            "asa_s": shown_seconds(k.asa_s), "aht_s": shown_seconds(k.aht_s),
            "longest_wait_s": shown_seconds(k.longest_wait_s)}
    # The same figures worked out by hand: 4 offered, one short abandon left out of the rates,
    # 1 of 3 answered within 20 s, waits 10 and 30 s, handle times 210 and 320 s.
    assert queues[("general", "2026-11-23 08:00")] == {
        "offered": "4", "answered": "2", "abandoned": "1", "short_abandoned": "1", "overflowed": "0",
        "answer_rate": "66.7%", "service_level": "33.3%", "asa_s": "20.0", "aht_s": "265.0",
        "longest_wait_s": "45.0"}
    assert queues[("vip", "2026-11-23 09:00")]["service_level"] == "50.0%"
    assert ("general", "2026-11-22 15:00") not in queues          # Sunday's call is outside the period

    agents = table(page.text, "agent-table")
    assert len(agents) == len(expected_agents) == 2              # 08:00 and 09:00: the day so far
    for k in expected_agents:
        cells = agents[(k.agent, k.start.strftime("%Y-%m-%d %H:%M"))]
        assert cells["calls"] == str(k.calls)
        assert cells["occupancy"] == shown_percent(k.occupancy)
        for state in ("ready", "not_ready", "ringing", "on_call", "wrap_up"):
            assert cells[f"{state}_s"] == shown_seconds(k.seconds.get(state, 0.0))
    eight = agents[("li_na", "2026-11-23 08:00")]
    assert (eight["on_call_s"], eight["wrap_up_s"], eight["not_ready_s"], eight["ready_s"]) == \
        ("180.0", "30.0", "900.0", "2490.0")
    assert agents[("li_na", "2026-11-23 09:00")]["ready_s"] == "3600.0"   # until now (10:00), not midnight


def test_the_report_shows_the_figures_runtime_kpis_compute_for_the_period(app, supervisor):
    check_figures_match_the_kpis(supervisor, app.state.url)


@pytest.fixture
def postgres_url():
    from tests.conftest import postgres_schema

    with postgres_schema("reports") as url:
        yield url


def test_the_report_reads_the_same_figures_from_postgresql(tmp_path, postgres_url):
    app = reports_app(tmp_path, postgres_url)
    seed(postgres_url)
    try:
        client = client_for(app, "zhou_qiang")
        check_figures_match_the_kpis(client, postgres_url)
        csv = client.get("/reports/queues.csv", params={"from": "2026-11-23", "interval": "hour"}).text
        assert "general,2026-11-23 08:00,4,2,1,1,0,0.667,0.333,20.0,265.0,45.0\n" in csv
    finally:
        app.state.studio.engine.dispose()


def svg_group(html: str, gid: str) -> str:
    """The SVG group matplotlib drew for the artist with id `gid`."""
    match = re.search(rf'<g id="{re.escape(gid)}">(.*?)</g>', html, re.S)
    assert match, f"no {gid} in the page"
    return match.group(1)


def bar_height(html: str, gid: str) -> float:
    """A bar's height in the drawing: its rectangle runs bottom left, bottom right, top right, top left."""
    corners = re.findall(r"[ML] ([\d.]+) ([\d.]+)", svg_group(html, gid))
    return abs(float(corners[0][1]) - float(corners[2][1]))


def test_the_charts_are_svg_with_a_series_per_queue(supervisor):
    page = supervisor.get("/reports", params={"preset": "today", "interval": "hour"}).text
    trend = re.search(r'<div class="chart" id="chart-trend">(.*?)</div>', page, re.S).group(1)
    assert trend.lstrip().startswith("<svg") and "<script" not in trend
    assert "服务水平" in trend and "呼入量" in trend and "综合服务" in trend and "VIP 专席" in trend
    # A point per hour that had calls: general at 08:00 and 09:00, VIP at 09:00 only.
    assert svg_group(trend, "series-service_level-general").count("<use ") == 2
    assert svg_group(trend, "series-service_level-vip").count("<use ") == 1
    assert svg_group(trend, "series-offered-general").count("<use ") == 2
    # Bars: general answered 3 and abandoned 1 today (the short abandon apart), VIP answered 1.
    bars = re.search(r'<div class="chart" id="chart-bars">(.*?)</div>', page, re.S).group(1)
    assert bar_height(bars, "series-answered-general") == pytest.approx(3 * bar_height(bars, "series-abandoned-general"), rel=1e-3)
    assert bar_height(bars, "series-answered-vip") == pytest.approx(bar_height(bars, "series-abandoned-general"), rel=1e-3)
    assert bar_height(bars, "series-abandoned-vip") == 0
    # The agents' time by state: ready, not ready, on a call and wrapping up; nobody was ringing.
    pie = re.search(r'<div class="chart" id="chart-pie">(.*?)</div>', page, re.S).group(1)
    for state in ("ready", "not_ready", "on_call", "wrap_up"):
        assert f'id="slice-{state}"' in pie
    assert 'id="slice-ringing"' not in pie
    assert "就绪" in pie and "话后整理" in pie


def test_the_csv_is_what_flowdesk_report_writes_for_the_same_period(app, supervisor):
    query = {"from": "2026-11-22", "to": "2026-11-23", "interval": "hour"}
    queues = supervisor.get("/reports/queues.csv", params=query)
    agents = supervisor.get("/reports/agents.csv", params={**query, "agent": "li_na"})
    assert queues.status_code == agents.status_code == 200
    assert queues.headers["content-type"].startswith("text/csv")
    assert 'filename="queues-2026-11-22-2026-11-23.csv"' in queues.headers["content-disposition"]
    log = EventLog(app.state.url)
    since = local(22, 0)
    assert queues.text == render_csv(queue_rows(log, since, MONDAY_10, None, "hour", SHANGHAI, TARGETS), QUEUE_COLUMNS)
    assert agents.text == render_csv(agent_rows(log, since, MONDAY_10, "li_na", "hour", SHANGHAI), AGENT_COLUMNS)
    log.engine.dispose()
    lines = queues.text.splitlines()
    assert lines[0] == ",".join(QUEUE_COLUMNS)
    assert "general,2026-11-22 15:00,1,1,0,0,0,1.000,1.000,8.000,100.0,8.000" in lines
    assert "general,2026-11-23 08:00,4,2,1,1,0,0.667,0.333,20.0,265.0,45.0" in lines


def test_presets_and_choices_narrow_the_report(supervisor):
    yesterday = supervisor.get("/reports", params={"preset": "yesterday", "interval": "day"}).text
    assert list(table(yesterday, "queue-table")) == [("general", "2026-11-22 00:00")]
    assert 'name="from" value="2026-11-22"' in yesterday and 'name="to" value="2026-11-22"' in yesterday
    week = supervisor.get("/reports", params={"preset": "last7", "interval": "day"}).text
    assert list(table(week, "queue-table")) == [("general", "2026-11-22 00:00"), ("general", "2026-11-23 00:00"),
                                                ("vip", "2026-11-23 00:00")]
    assert 'name="from" value="2026-11-17"' in week
    vip = supervisor.get("/reports", params={"preset": "today", "interval": "day", "queue": "vip"}).text
    assert list(table(vip, "queue-table")) == [("vip", "2026-11-23 00:00")]
    quiet = supervisor.get("/reports", params={"preset": "today", "agent": "wang_fang"}).text
    assert "这段时间没有坐席状态记录" in quiet and 'id="agent-table"' not in quiet
    empty = supervisor.get("/reports", params={"from": "2026-10-01"}).text
    assert "这段时间没有排队的来电" in empty and "<svg" not in empty


@pytest.mark.parametrize("query, says", [
    ({"from": "2026-13-01"}, "开始日期“2026-13-01”不是有效日期"),
    ({"from": "2026-11-23", "to": "yesterday"}, "结束日期“yesterday”不是有效日期"),
    ({"from": "2026-11-23", "to": "2026-11-20"}, "结束日期 2026-11-20 早于开始日期 2026-11-23"),
    ({"from": "2026-09-01", "to": "2026-11-23", "interval": "15min"}, "按15 分钟统计最多查看 7 天"),
    ({"interval": "week"}, "统计粒度“week”无效"),
    ({"preset": "lastyear"}, "没有名为“lastyear”的快捷时段"),
    ({"queue": "nosuch"}, "没有名为“nosuch”的队列"),
    ({"agent": "nobody"}, "没有名为“nobody”的坐席"),
])
def test_a_bad_choice_gets_a_clear_message_on_the_form(supervisor, query, says):
    page = supervisor.get("/reports", params=query)
    assert page.status_code == 400
    assert says in page.text and 'class="error"' in page.text and "Traceback" not in page.text
    assert '<form class="search"' in page.text          # the form stays, to put it right
    exported = supervisor.get("/reports/queues.csv" if "agent" not in query else "/reports/agents.csv", params=query)
    assert exported.status_code == 400 and says in exported.text


@pytest.mark.parametrize("user, reports_status, staffing_status", [
    ("li_na", 403, 403),          # an agent
    ("sun_li", 200, 403),         # QA reads the service statistics, does not plan staff
    ("zhao_min", 200, 200),       # a team lead
    ("zhou_qiang", 200, 200),     # a supervisor
])
def test_reports_and_staffing_are_for_team_leads_supervisors_and_qa(app, user, reports_status, staffing_status):
    client = client_for(app, user)
    for path in ("/reports", "/reports/queues.csv", "/reports/agents.csv"):
        answer = client.get(path)
        assert answer.status_code == reports_status, path
        if reports_status == 403:
            assert "历史报表只对班组长、值班主管和质检员开放" in answer.text and "general" not in answer.text
    for path in ("/staffing", "/staffing.csv"):
        answer = client.get(path)
        assert answer.status_code == staffing_status, path
        if staffing_status == 403:
            assert "排班测算只对班组长和值班主管开放" in answer.text


def test_nobody_logged_in_is_sent_to_log_in(app):
    answer = TestClient(app).get("/reports?preset=today", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")


# ------------------------------------------------------------------ /staffing

@pytest.fixture
def busy_app(tmp_path, sqlite_url):
    """180 calls into `general` between 08:00 and 08:15 (720 an hour), each handled in 240 s (200 s of
    talk and 40 s of wrap-up), and 30 more between 08:15 and 08:30 that all hung up."""
    made = reports_app(tmp_path, sqlite_url)
    start = local(23, 8)
    rows = []
    for n in range(180):
        rows += visit(n, "general", start + dt.timedelta(seconds=5 * n), "answered", 2, talk_s=200, wrap_s=40,
                      agent="li_na")
    for n in range(180, 210):
        rows += visit(n, "general", start + dt.timedelta(minutes=15, seconds=30 * (n - 180)), "abandoned", 40)
    log = EventLog(sqlite_url)
    log.write(rows)
    log.engine.dispose()
    return made


def staffing(client: TestClient, **query) -> dict:
    page = client.get("/staffing", params={"queue": "general", "from": "2026-11-23", "interval": "15min", **query})
    assert page.status_code == 200, page.text
    body = re.search(r'<table class="kpis" id="staffing-table">(.*?)</table>', page.text, re.S).group(1)
    rows = {}
    for row in re.finditer(r'<tr data-interval="([^"]+)">(.*?)</tr>', body, re.S):
        rows[row.group(1)] = {k: v.strip() for k, v in re.findall(r'data-column="(\w+)"[^>]*>([^<]*)', row.group(2))}
    return {"rows": rows, "html": page.text}


def test_staffing_matches_the_published_erlang_c_worked_example(busy_app):
    """The classic worked example of the Erlang C formula: 360 calls per half hour with a 4-minute
    average handle time is 48 Erlangs; with 55 agents the probability of waiting is 0.2387, 86.7% of
    calls are answered within 20 s (84.6% within 15 s) and the ASA is 8.2 s.  (Westbay Engineers,
    "The Erlang-C formula", the example also worked in Call Centre Helper's "Erlang C formula - made
    simple"; tests/test_erlang.py checks runtime.erlang against the same figures.)  Here the history
    has that rate: 180 calls in a quarter of an hour, each handled in 240 s."""
    client = client_for(busy_app, "zhou_qiang")
    at_85 = staffing(client, percent="85", within="20")["rows"]["2026-11-23 08:00"]
    assert at_85 == {"offered": "180", "calls_per_hour": "720.0", "aht_s": "240.0", "erlangs": "48.00",
                     "agents": "55", "service_level": "86.7%", "asa_s": "8.2", "scheduled": "79"}
    assert int(at_85["agents"]) == erlang.agents_needed(720, 240, 0.85, 20)
    # Within 15 s the same 55 agents answer 84.6% (published), so 84% needs 55 and 85% one more.
    assert staffing(client, percent="84", within="15")["rows"]["2026-11-23 08:00"]["service_level"] == "84.6%"
    assert staffing(client, percent="84", within="15")["rows"]["2026-11-23 08:00"]["agents"] == "55"
    assert staffing(client, percent="85", within="15")["rows"]["2026-11-23 08:00"]["agents"] == "56"


def test_staffing_per_interval_equals_agents_needed_and_the_target_and_aht_can_change(busy_app):
    client = client_for(busy_app, "zhao_min")
    default = staffing(client)                     # the queue's own target: 80% within 20 s
    assert 'name="percent" value="80"' in default["html"] and 'name="within" value="20"' in default["html"]
    rows = default["rows"]
    assert list(rows) == ["2026-11-23 08:00", "2026-11-23 08:15"]
    assert rows["2026-11-23 08:00"]["agents"] == str(erlang.agents_needed(720, 240, 0.80, 20)) == "54"
    # Nobody finished a call between 08:15 and 08:30: the period's handle time (240 s) stands in.
    quiet = rows["2026-11-23 08:15"]
    assert quiet["calls_per_hour"] == "120.0" and quiet["aht_s"] == "240.0*"
    assert quiet["agents"] == str(erlang.agents_needed(120, 240, 0.80, 20))
    assert 'id="peak">54<' in default["html"]
    # The brief planner's question: what if calls took two minutes?
    shorter = staffing(client, aht="120")["rows"]
    assert shorter["2026-11-23 08:00"]["agents"] == str(erlang.agents_needed(720, 120, 0.80, 20))
    assert shorter["2026-11-23 08:00"]["erlangs"] == "24.00"
    chart = re.search(r'<div class="chart" id="chart-staffing">(.*?)</div>', default["html"], re.S).group(1)
    assert chart.lstrip().startswith("<svg") and "所需坐席" in chart
    assert svg_group(chart, "series-agents").count("<use ") == 2
    assert svg_group(chart, "series-offered").count("<use ") == 2
    csv = client.get("/staffing.csv", params={"queue": "general", "from": "2026-11-23", "interval": "15min"})
    assert csv.status_code == 200
    assert csv.text.splitlines() == [",".join(reports.STAFFING_COLUMNS),
                                     f"general,2026-11-23 08:00,180,720.0,240.0,48.0,54,"
                                     f"{erlang.service_level(54, 720, 240, 20):.3f},"
                                     f"{erlang.average_speed_of_answer(54, 720, 240):.1f},78",
                                     csv.text.splitlines()[2]]
    assert csv.text.splitlines()[2].startswith("general,2026-11-23 08:15,30,120.0,240.0,8.000,")


def test_staffing_schedules_for_shrinkage(busy_app):
    """55 agents on the phones with 30% of paid time off them (the default) need 55 / 0.7 = 78.6,
    so 79 on the schedule; with no shrinkage, the 55 themselves; a shrinkage of 95% is refused."""
    client = client_for(busy_app, "zhou_qiang")
    default = staffing(client, percent="85", within="20")
    assert default["rows"]["2026-11-23 08:00"]["scheduled"] == "79"
    assert 'name="shrinkage" value="30"' in default["html"] and 'id="peak-scheduled">79<' in default["html"]
    assert staffing(client, percent="85", within="20", shrinkage="0")["rows"]["2026-11-23 08:00"]["scheduled"] == "55"
    assert staffing(client, percent="85", within="20", shrinkage="35")["rows"]["2026-11-23 08:00"]["scheduled"] == "85"
    refused = client.get("/staffing", params={"queue": "general", "from": "2026-11-23", "shrinkage": "95"})
    assert refused.status_code == 400 and "折损率 %应在 0 到 90 之间" in refused.text


def test_the_360_calls_an_hour_example_needs_29_agents_not_28(busy_app, sqlite_url):
    """360 calls an hour of 240 s each is 24 Erlangs: by the Erlang C formula 28 agents answer 76.1%
    within 20 s, so 80/20 takes 29 (84.0%).  The history: 90 calls in a quarter of an hour, each
    handled in 240 s, on Sunday afternoon."""
    assert erlang.service_level(28, 360, 240, 20) == pytest.approx(0.761, abs=1e-3)
    assert erlang.service_level(29, 360, 240, 20) == pytest.approx(0.840, abs=1e-3)
    log = EventLog(sqlite_url)
    log.write([row for n in range(90) for row in visit(1000 + n, "business", local(22, 14, 0) + dt.timedelta(seconds=10 * n),
                                                       "answered", 1, talk_s=180, wrap_s=60, agent="liu_yang")])
    log.engine.dispose()
    client = client_for(busy_app, "zhou_qiang")
    rows = staffing(client, queue="business", **{"from": "2026-11-22"})["rows"]
    assert rows["2026-11-22 14:00"] == {"offered": "90", "calls_per_hour": "360.0", "aht_s": "240.0",
                                        "erlangs": "24.00", "agents": "29", "service_level": "84.0%",
                                        "asa_s": erlang_asa(29, 360, 240), "scheduled": "42"}


def erlang_asa(agents: int, calls_per_hour: float, aht_s: float) -> str:
    return f"{erlang.average_speed_of_answer(agents, calls_per_hour, aht_s):.1f}"


@pytest.mark.parametrize("query, says", [
    ({"percent": "100"}, "服务水平目标应在 1 到 99.9 之间"),
    ({"within": "-5"}, "目标应答时间(秒)应在 0 到 3600 之间"),
    ({"aht": "abc"}, "平均处理时长(秒)“abc”不是数字"),
    ({"aht": "nan"}, "平均处理时长(秒)应在"),
    ({"interval": "day"}, "统计粒度“day”无效"),
    ({"queue": "nosuch"}, "没有名为“nosuch”的队列"),
    ({"from": "23/11/2026"}, "开始日期“23/11/2026”不是有效日期"),
])
def test_staffing_refuses_bad_input_with_a_clear_message(app, query, says):
    client = client_for(app, "zhou_qiang")
    page = client.get("/staffing", params=query)
    assert page.status_code == 400
    assert says in page.text and "Traceback" not in page.text and '<form class="search"' in page.text
    assert client.get("/staffing.csv", params=query).status_code == 400
