"""`flowdesk report` over an event log written for the test."""
from __future__ import annotations

import datetime

from flowdesk.cli import main
from runtime.storage import AgentState, Call, EventLog, QueueVisit

SH = datetime.timezone(datetime.timedelta(hours=8))


def t(h, m=0, s=0):
    return datetime.datetime(2026, 11, 23, h, m, s, tzinfo=SH)


def fill(url):
    log = EventLog(url)
    log.write([Call(id=f"c{i}", bundle_hash="h", flow="hotline", caller="1", dialed="2", started_at=t(9)) for i in range(3)])
    log.write([
        QueueVisit(call_id="c0", queue="general", enqueued_at=t(9, 0), left_at=t(9, 0, 10), outcome="answered",
                   agent="a1", talk_ended_at=t(9, 3, 10), wrapup_ended_at=t(9, 3, 40)),
        QueueVisit(call_id="c1", queue="general", enqueued_at=t(9, 5), left_at=t(9, 5, 30), outcome="abandoned"),
        QueueVisit(call_id="c2", queue="vip", enqueued_at=t(10, 5), left_at=t(10, 5, 2), outcome="answered",
                   agent="a1", talk_ended_at=t(10, 6, 2)),
        AgentState(agent="a1", state="ready", at=t(9)),
        AgentState(agent="a1", state="on_call", at=t(9, 0, 10)),
        AgentState(agent="a1", state="wrap_up", at=t(9, 3, 10)),
        AgentState(agent="a1", state="ready", at=t(9, 3, 40)),
    ])


def test_queue_report_table(database_url, capsys):
    fill(database_url)
    assert main(["report", "--db", database_url, "--since", "2026-11-23 08:00", "--until", "2026-11-23 12:00"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["queue", "interval", "offered", "answered"]
    general = lines[1].split()
    assert general[:9] == ["general", "2026-11-23", "09:00", "2", "1", "1", "0", "0", "0.500"]
    assert lines[2].split()[:5] == ["vip", "2026-11-23", "10:00", "1", "1"]


def test_queue_report_csv_for_one_queue(database_url, tmp_path):
    fill(database_url)
    out = tmp_path / "general.csv"
    assert main(["report", "--db", database_url, "--since", "2026-11-23", "--until", "2026-11-24",
                 "--queue", "general", "--interval", "day", "--csv", str(out)]) == 0
    header, row = out.read_text(encoding="utf-8").splitlines()
    assert header.startswith("queue,interval,offered,answered,abandoned")
    assert row.split(",")[:5] == ["general", "2026-11-23 00:00", "2", "1", "1"]
    assert row.split(",")[9:11] == ["10.0", "210.0"]  # ASA 10 s; AHT 180 s talk + 30 s wrap-up


def test_agent_report(database_url, capsys):
    fill(database_url)
    assert main(["report", "--agents", "--db", database_url, "--since", "2026-11-23 09:00",
                 "--until", "2026-11-23 10:00"]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[0] == "a1" and row[3] == "1"  # one call
    assert row[4] == "3390.0" and row[7] == "180.0" and row[8] == "30.0"


def test_a_bad_time_is_a_usage_error(tmp_path, capsys):
    assert main(["report", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--since", "yesterday"]) == 2
    assert "is not a time" in capsys.readouterr().err
