"""Scoring a call in headless Chromium: the QA reviewer samples calls, opens one, its recording loads
in the audio player, choosing 投诉 takes away the part not for complaints, the scores and note are
saved; then the agent reads them on her own page."""
from __future__ import annotations

import datetime as dt
import re
import wave

import pytest

from runtime.storage import Call, EventLog, QueueVisit

pytestmark = pytest.mark.browser

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def write_wav(path, seconds: float, rate: int = 8000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * int(seconds * rate))


def put_calls(live_studio) -> None:
    """Three answered calls of this morning (the studio's clock: Monday 23 November 2026, 10:00 in
    Shanghai), each with a two-second recording in the project's recordings folder."""
    studio = live_studio.app.state.studio
    folder = studio.project / ".flowdesk" / "recordings"
    rows = []
    for n, (agent, queue, minute) in enumerate([("li_na", "general", 5), ("li_na", "general", 20),
                                                ("wang_fang", "complaints", 40)], start=1):
        write_wav(folder / f"call-{n}.wav", 2.0)
        start = dt.datetime(2026, 11, 23, 9, minute, tzinfo=SHANGHAI)
        rows += [Call(id=f"call-{n}", bundle_hash="test", flow="hotline", caller="13800138000", dialed="4008001000",
                      started_at=start, ended_at=start + dt.timedelta(minutes=4), end_reason="hangup", queue=queue,
                      agent=agent, recording=str(folder / f"call-{n}.wav")),
                 QueueVisit(call_id=f"call-{n}", queue=queue, enqueued_at=start + dt.timedelta(seconds=5),
                            outcome="answered", left_at=start + dt.timedelta(seconds=15), agent=agent,
                            talk_ended_at=start + dt.timedelta(minutes=3))]
    log = EventLog.__new__(EventLog)
    log.engine = studio.engine
    log.write(rows)


def test_a_reviewer_scores_a_complaint_call_and_the_agent_reads_it(page, live_studio, log_in, monkeypatch):
    monkeypatch.delenv("FLOWDESK_RECORDINGS", raising=False)
    put_calls(live_studio)
    log_in("sun_li", "/qa")
    assert page.locator("header nav a.on").inner_text() == "质检"

    page.fill("input[name=per_agent]", "1")
    page.click("#sample")
    page.wait_for_url(re.compile(r"seed=\d+"))
    agents = page.locator("#call-list tr[data-call]").evaluate_all("rows => rows.map(r => r.dataset.agent)")
    assert sorted(agents) == ["li_na", "wang_fang"]

    page.locator('#call-list tr[data-agent="wang_fang"] a').click()
    page.wait_for_url(re.compile(r"/qa/call/call-3"))
    page.wait_for_function("() => document.querySelector('#recording audio').readyState >= 1", timeout=10_000)
    duration = page.evaluate("() => document.querySelector('#recording audio').duration")
    assert abs(duration - 2.0) < 0.05

    assert page.locator('[data-part="basic_skills"]').is_visible()
    page.select_option("#call_type", "complaint")
    page.locator('[data-part="basic_skills"]').wait_for(state="detached")
    assert page.locator("#maximum").inner_text() == "100"
    assert page.locator('[data-part="complaint_skills"]').is_visible()

    for field in page.locator("#scoring input[type=number]").all():
        field.fill(field.get_attribute("max"))
    page.fill('input[name="score:complaint_skills.solution"]', "7")
    page.fill("#note", "解决方案不够具体,已安排复盘。")
    page.click("#save")
    page.locator("#saved").wait_for()
    assert page.locator("#saved").inner_text() == "已保存:97/100 分。"

    page.click('header form[action="/logout"] button')
    page.wait_for_url(re.compile(r"/login"))
    log_in("wang_fang", "/qa/mine")
    row = page.locator('tr[data-call="call-3"]')
    assert row.locator("td.score").inner_text() == "97/100(97.0%)"
    assert row.locator("td.note").inner_text() == "解决方案不够具体,已安排复盘。"
    assert row.locator('td[data-part="basic_skills"]').inner_text() == "不适用"
    assert row.locator('td[data-part="complaint_skills"]').inner_text() == "27/30"
