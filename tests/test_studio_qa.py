"""Quality assurance in the studio: who may list, score, listen and read what; scoring on the example
project's form (schemas/qa.schema) with its skipped parts; recordings served with Range requests and
only from the recordings folder.  The example project on SQLite, on a fixed clock (Monday
23 November 2026, 10:00 in Shanghai)."""
from __future__ import annotations

import datetime as dt
import re
import wave
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

from starlette.testclient import TestClient  # noqa: E402

from runtime import qa  # noqa: E402
from runtime.storage import Call, EventLog, QueueVisit  # noqa: E402
from studio.app import create_app  # noqa: E402
from test_studio_app import MONDAY_10, PASSWORD, Clock, local, log_in, project  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def secret():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLOWDESK_SECRET", "qa-tests")
        patch.delenv("FLOWDESK_RECORDINGS", raising=False)
        yield


def write_wav(path: Path, seconds: float = 1.0, rate: int = 8000) -> Path:
    """A valid mono 16-bit WAV of silence."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * int(seconds * rate))
    return path


def answered(call_id: str, agent: str, queue: str, when: dt.datetime, talk_s: int, recording: str | None) -> list:
    return [Call(id=call_id, bundle_hash="test", flow="hotline", caller="13800138000", dialed="4008001000",
                 started_at=when, ended_at=when + dt.timedelta(seconds=40 + talk_s), end_reason="hangup", queue=queue,
                 agent=agent, recording=recording),
            QueueVisit(call_id=call_id, queue=queue, enqueued_at=when + dt.timedelta(seconds=5), outcome="answered",
                       left_at=when + dt.timedelta(seconds=20), agent=agent,
                       talk_ended_at=when + dt.timedelta(seconds=20 + talk_s))]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qa")
    home = project(folder / "project")
    recordings = home / ".flowdesk" / "recordings"
    write_wav(recordings / "call-1.wav")
    write_wav(recordings / "call-2.wav")
    write_wav(home / ".flowdesk" / "secret.wav")       # beside the folder, not in it
    url = f"sqlite:///{folder / 'studio.db'}"
    made = create_app(home, db_url=url, clock=Clock(MONDAY_10))
    for name in made.state.studio.accounts.users:
        made.state.studio.accounts.set_password(name, PASSWORD)
    log = EventLog(url)
    log.write([
        *answered("call-1", "li_na", "general", local(23, 8, 5), 180, str(recordings / "call-1.wav")),
        *answered("call-2", "wang_fang", "complaints", local(23, 8, 20), 260, ".flowdesk/recordings/call-2.wav"),
        *answered("call-3", "li_na", "general", local(23, 8, 40), 60, "/etc/passwd"),
        *answered("call-4", "li_na", "general", local(23, 8, 50), 90, str(recordings / ".." / "secret.wav")),
        *answered("call-5", "zhao_min", "complaints", local(23, 9, 0), 300, None),
        *answered("call-6", "li_na", "general", local(23, 9, 10), 30, str(recordings / "call-6.wav")),  # file gone
        *answered("call-7", "wang_fang", "general", local(20, 15, 0), 120, None),
    ])
    log.engine.dispose()
    made.state.recordings = recordings
    return made


def client_for(app, user: str) -> TestClient:
    client = TestClient(app)
    log_in(client, user)
    return client


def token(client: TestClient, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def full_marks(app, call_type: str, **changes) -> dict[str, object]:
    form = app.state.studio.bundle.evaluations["inbound"]
    parts = qa.applicable_parts(form, call_type) if call_type else form.parts
    given = {f"score:{qa.item_key(p, i)}": i.points for p in parts for i in p.items}
    given.update({f"score:{key.replace('__', '.')}": value for key, value in changes.items()})
    return given


def save(client: TestClient, app, call_id: str, call_type: str, note: str = "", **changes):
    data = {"csrf_token": token(client, f"/qa/call/{call_id}"), "evaluation": "inbound", "call_type": call_type,
            "note": note, **full_marks(app, call_type, **changes)}
    return client.post(f"/qa/call/{call_id}", data=data, follow_redirects=False)


def listed(html: str) -> list[str]:
    return re.findall(r'<tr data-call="([^"]+)"', html)


# ------------------------------------------------------------------ who sees what

def test_qa_staff_team_leads_and_supervisors_list_calls_agents_do_not(app):
    for user in ("sun_li", "zhao_min", "zhou_qiang"):
        page = client_for(app, user).get("/qa?from=2026-11-23&to=2026-11-23")
        assert page.status_code == 200, user
        assert listed(page.text) == ["call-6", "call-5", "call-4", "call-3", "call-2", "call-1"]
        assert '<a href="/qa" class="on">质检</a>' in page.text
    agent = client_for(app, "li_na")
    refused = agent.get("/qa")
    assert refused.status_code == 403 and "质检只对质检员、班组长和值班主管开放" in refused.text
    assert agent.get("/qa/trends").status_code == 403
    assert agent.get("/qa/call/call-1").status_code == 403
    mine = agent.get("/qa/mine")
    assert '<a href="/qa/mine" class="on">我的质检</a>' in mine.text and '<a href="/qa">' not in mine.text


def test_the_list_filters_and_samples_per_agent(app):
    client = client_for(app, "sun_li")
    week = "from=2026-11-16&to=2026-11-23"
    assert listed(client.get(f"/qa?{week}&agent=wang_fang").text) == ["call-2", "call-7"]
    assert listed(client.get(f"/qa?{week}&queue=complaints").text) == ["call-5", "call-2"]
    assert listed(client.get(f"/qa?{week}&min_talk=200").text) == ["call-5", "call-2"]
    assert listed(client.get(f"/qa?{week}&recorded=no").text) == ["call-5", "call-7"]
    bad = client.get(f"/qa?{week}&min_talk=long")
    assert bad.status_code == 400 and "最短通话时长(秒)“long”不是数字" in bad.text

    asked = client.get(f"/qa?{week}&action=sample&per_agent=1", follow_redirects=False)
    assert asked.status_code == 303 and "seed=" in asked.headers["location"]
    sample = client.get(asked.headers["location"])
    agents = re.findall(r'<tr data-call="[^"]+" data-agent="([^"]+)"', sample.text)
    assert sorted(agents) == ["li_na", "wang_fang", "zhao_min"]
    assert client.get(asked.headers["location"]).text.count("data-call=") == sample.text.count("data-call=")
    assert listed(client.get(asked.headers["location"]).text) == listed(sample.text)   # same seed, same calls
    too_many = client.get(f"/qa?{week}&action=sample&per_agent=500&seed=1")
    assert too_many.status_code == 400 and "每位坐席抽取的通数应在 1 到 50 之间" in too_many.text


# ------------------------------------------------------------------ scoring

def test_choosing_complaint_leaves_out_basic_skills(app):
    client = client_for(app, "sun_li")
    before = client.get("/qa/call/call-2").text
    assert 'data-part="basic_skills"' in before and 'data-part="complaint_skills"' in before
    swapped = client.get("/qa/call/call-2/form?call_type=complaint&score%3Aattitude.tone=4",
                         headers={"HX-Request": "true"}).text
    assert 'data-part="basic_skills"' not in swapped and 'data-part="complaint_skills"' in swapped
    assert 'name="score:attitude.tone" value="4"' in swapped          # what was typed stays
    assert '<b id="maximum">100</b>' in swapped
    inquiry = client.get("/qa/call/call-2/form?call_type=inquiry").text
    assert 'data-part="complaint_skills"' not in inquiry and '<b id="maximum">95</b>' in inquiry


def test_scoring_a_complaint_totals_over_the_applicable_parts(app):
    client = client_for(app, "sun_li")
    saved = save(client, app, "call-2", "complaint", "开头语不规范,已当面辅导。", general_skills__greeting=3,
                 basic_skills__needs=10)     # a score for the skipped part is not counted
    assert saved.status_code == 303
    shown = client.get(saved.headers["location"]).text
    assert '<p class="ok" role="status" id="saved">已保存:98/100 分。</p>' in shown
    assert "开头语不规范,已当面辅导。" in shown
    with app.state.studio.engine.connect() as connection:
        review = qa.review_of(connection, "call-2", "inbound")
    assert (review.agent, review.reviewer, review.call_type, review.total, review.maximum) == (
        "wang_fang", "sun_li", "complaint", 98, 100)
    assert review.part_totals()["basic_skills"] is None
    assert "98/100" in client.get("/qa?from=2026-11-23&to=2026-11-23").text

    # The agent sees the score per part and the note; another agent does not see it.
    mine = client_for(app, "wang_fang").get("/qa/mine").text
    row = re.search(r'<tr data-call="call-2">(.*?)</tr>', mine, re.S).group(1)
    assert "98/100(98.0%)" in row and "开头语不规范,已当面辅导。" in row and "孙丽" in row
    assert re.search(r'data-part="basic_skills"><span class="muted">不适用', row)
    assert re.search(r'data-part="general_skills">23/25', row)
    assert "call-2" not in client_for(app, "li_na").get("/qa/mine").text


def test_a_wrong_score_is_named_and_what_was_typed_stays(app):
    client = client_for(app, "sun_li")
    refused = save(client, app, "call-1", "inquiry", "语速偏快", attitude__tone=9, product_knowledge__plans="")
    assert refused.status_code == 400
    assert "服务态度 · 语气亲切,语速适中:9 分超出范围,应在 0 到 5 分之间。" in refused.text
    assert "产品知识 · 套餐资费:请打分(0 到 10 分)。" in refused.text
    assert 'name="score:attitude.tone" value="9"' in refused.text
    assert 'name="score:general_skills.greeting" value="5"' in refused.text
    assert "语速偏快</textarea>" in refused.text
    assert '<option value="inquiry" selected>' in refused.text
    no_type = save(client, app, "call-1", "")
    assert no_type.status_code == 400 and "请选择通话类型" in no_type.text
    with app.state.studio.engine.connect() as connection:
        assert qa.review_of(connection, "call-1", "inbound") is None


def test_an_agent_cannot_score_and_nobody_scores_their_own_call(app):
    agent = client_for(app, "li_na")
    data = {"csrf_token": token(agent, "/qa/mine"), "call_type": "inquiry", **full_marks(app, "inquiry")}
    assert agent.post("/qa/call/call-1", data=data, follow_redirects=False).status_code == 403
    lead = client_for(app, "zhao_min")
    own = save(lead, app, "call-5", "complaint")
    assert own.status_code == 400 and "不能给自己接听的通话评分" in own.text
    with app.state.studio.engine.connect() as connection:
        assert qa.review_of(connection, "call-1", "inbound") is None
        assert qa.review_of(connection, "call-5", "inbound") is None


def test_a_call_without_a_recording_can_be_scored(app):
    client = client_for(app, "zhou_qiang")
    page = client.get("/qa/call/call-5").text
    assert "这通电话没有录音,仍可根据通话记录评分。" in page and "<audio" not in page
    assert save(client, app, "call-5", "business", "办理流程熟练").status_code == 303
    assert client.get("/qa/call/nothing-here").status_code == 404


# ------------------------------------------------------------------ the recording

def test_the_recording_is_served_with_range_requests(app):
    client = client_for(app, "sun_li")
    page = client.get("/qa/call/call-1").text
    assert '<audio controls preload="metadata" src="/qa/call/call-1/recording"></audio>' in page
    whole = client.get("/qa/call/call-1/recording")
    size = (app.state.recordings / "call-1.wav").stat().st_size
    assert whole.status_code == 200 and whole.headers["content-type"] in ("audio/x-wav", "audio/wav")
    assert whole.headers["accept-ranges"] == "bytes" and len(whole.content) == size
    part = client.get("/qa/call/call-1/recording", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.headers["content-range"] == f"bytes 100-199/{size}"
    assert part.content == whole.content[100:200]
    relative = client.get("/qa/call/call-2/recording")           # listed relative to the project
    assert relative.status_code == 200 and relative.content[:4] == b"RIFF"


def test_an_agent_hears_only_their_own_calls(app):
    li_na = client_for(app, "li_na")
    assert li_na.get("/qa/call/call-1/recording").status_code == 200
    other = li_na.get("/qa/call/call-2/recording")
    assert other.status_code == 404 and b"RIFF" not in other.content


def test_a_recording_outside_the_folder_is_refused(app):
    client = client_for(app, "sun_li")
    for call_id in ("call-3", "call-4"):
        refused = client.get(f"/qa/call/{call_id}/recording")
        assert refused.status_code == 403, call_id
        assert "录音路径在录音目录之外" in refused.text and "root:" not in refused.text
        assert "录音路径在录音目录之外" in client.get(f"/qa/call/{call_id}").text
    gone = client.get("/qa/call/call-6/recording")
    assert gone.status_code == 404 and "录音文件 call-6.wav 不在录音目录中" in gone.text


# ------------------------------------------------------------------ trends

def test_trends_per_agent_and_per_criterion(app):
    qa_staff = client_for(app, "sun_li")
    assert save(qa_staff, app, "call-7", "inquiry", attitude__tone=0).status_code == 303      # 90/95, week of 16 Nov
    assert save(qa_staff, app, "call-4", "inquiry").status_code == 303                         # 95/95, week of 23 Nov
    assert qa_staff.get("/qa/trends").status_code == 403
    lead = client_for(app, "zhao_min")
    page = lead.get("/qa/trends?from=2026-11-16&to=2026-11-22&interval=week&agent=wang_fang")
    assert page.status_code == 200
    row = re.search(r'<tr data-agent="wang_fang">(.*?)</tr>', page.text, re.S).group(1)
    assert re.search(r'data-start="2026-11-16">94.7%', row)
    tone = re.search(r'<tr data-criterion="attitude.tone" class="item">(.*?)</tr>', page.text, re.S).group(1)
    assert '<td class="n" data-agent="wang_fang">0.0%</td>' in tone
    attitude = re.search(r'<tr data-criterion="attitude" class="part">(.*?)</tr>', page.text, re.S).group(1)
    assert '<td class="n" data-agent="wang_fang">75.0%</td>' in attitude
    needs = re.search(r'<tr data-criterion="basic_skills.needs" class="item">(.*?)</tr>', page.text, re.S).group(1)
    assert '<td class="n" data-agent="wang_fang">100.0%</td>' in needs
    assert 'id="series-score-wang_fang"' in page.text and 'id="cell-attitude.tone-wang_fang"' in page.text
    everyone = lead.get("/qa/trends?from=2026-11-16&to=2026-11-23&interval=week").text
    assert '<tr data-agent="li_na">' in everyone
    bad = lead.get("/qa/trends?interval=year")
    assert bad.status_code == 400 and "统计粒度“year”无效" in bad.text


# ------------------------------------------------------------------ a project without a form

def test_a_project_without_an_evaluation_says_so(tmp_path):
    home = project(tmp_path / "project")
    (home / "schemas" / "qa.schema").unlink()
    made = create_app(home, db_url=f"sqlite:///{tmp_path / 'studio.db'}", clock=Clock(MONDAY_10))
    for name in made.state.studio.accounts.users:
        made.state.studio.accounts.set_password(name, PASSWORD)
    for user, path in (("sun_li", "/qa"), ("zhao_min", "/qa/trends"), ("li_na", "/qa/mine"), ("sun_li", "/qa/call/x")):
        page = client_for(made, user).get(path)
        assert page.status_code == 200 and "项目中没有定义质检表(evaluation)" in page.text, (user, path)
