"""`flowdesk studio`: its options, its refusals, the demo set-up (passwords and records), the clock
of --at and the choice of telephony (simulated, Asterisk, or auto against a loopback ARI stand-in)."""
from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import http.server
import shutil
import socket
import threading
from pathlib import Path

import pytest

from flowdesk import studio_cmd
from flowdesk.cli import db_option, env_option
from runtime import qa
from runtime.crm.users import SYSTEM
from runtime.storage import Call, EventLog
from studio.app import create_app

REPO = Path(__file__).resolve().parent.parent


def parse(*argv: str):
    parser = argparse.ArgumentParser()
    studio_cmd.add_parser(parser.add_subparsers(), env_option, db_option)
    return parser.parse_args(["studio", *argv])


def project(folder: Path) -> Path:
    for name in ("flows", "schemas"):
        shutil.copytree(REPO / name, folder / name, ignore=shutil.ignore_patterns("*.test.yaml"))
    shutil.copy(REPO / "flowdesk.yaml", folder / "flowdesk.yaml")
    return folder


def test_options_and_their_defaults():
    args = parse()
    assert (args.project, args.port, args.host, args.demo, args.db) == (".", 8000, "127.0.0.1", False, None)
    args = parse("--project", "x", "--port", "9000", "--host", "0.0.0.0", "--demo", "--db", "sqlite:///a.db")
    assert (args.project, args.port, args.host, args.demo, args.db) == ("x", 9000, "0.0.0.0", True, "sqlite:///a.db")


def test_a_folder_that_is_no_project_is_a_usage_error(tmp_path, capsys):
    assert studio_cmd.cmd_studio(parse("--project", str(tmp_path))) == 2
    assert "no flows/ or schemas/" in capsys.readouterr().err


def test_a_project_with_errors_is_not_served(tmp_path, capsys):
    folder = project(tmp_path / "p")
    (folder / "schemas" / "broken.schema").write_text('entity Broken "坏" {\n    x: nosuchtype\n}\n')
    assert studio_cmd.cmd_studio(parse("--project", str(folder))) == 1
    err = capsys.readouterr().err
    assert "does not compile" in err and "broken.schema" in err


def test_demo_prints_log_ins_that_work_and_seeds_an_empty_crm_once(tmp_path):
    app = create_app(project(tmp_path / "p"))
    studio = app.state.studio
    # `make run` runs the flow tests first; the calls they log are no history of the centre's own.
    EventLog(str(studio.engine.url)).write([Call(id="flow-test-1", bundle_hash="h", flow="hotline", caller="1", dialed="",
                                                 started_at=studio.clock(), test=True)])
    printed: list[str] = []
    studio_cmd.prepare_demo(studio, out=printed.append)
    log_ins = {line.split()[0]: line.split()[1] for line in printed if line.startswith("  ")}
    assert set(log_ins) == set(studio.bundle.agents)
    assert studio.accounts.authenticate("li_na", log_ins["li_na"]).name == "li_na"
    counts = {e: len(studio.store.list(SYSTEM, e).rows) for e in ("AccountManager", "Customer", "Ticket")}
    assert counts == {"AccountManager": 2, "Customer": 5, "Ticket": 3}
    vip = next(r for r in studio.store.list(SYSTEM, "Customer").rows if r["name"] == "刘德明")
    manager = studio.store.get(SYSTEM, "AccountManager", vip["manager"])
    assert manager["agent"] == "zhang_wei"
    assert any(line.startswith("demo call history added: ") for line in printed)
    calls = EventLog(str(studio.engine.url)).calls(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), studio.clock())
    assert len(calls) > 1000 and any(c.caller == "13800138003" for c in calls)
    with studio.engine.connect() as connection:
        reviews = qa.reviews(connection)
    assert f"demo QA reviews added: {len(reviews)} calls scored" in printed
    assert {r.agent for r in reviews} == {n for n, a in studio.bundle.agents.items() if a.queues}
    assert all(r.reviewer == "sun_li" and 0 < r.total <= r.maximum and r.note for r in reviews)
    again: list[str] = []
    studio_cmd.prepare_demo(studio, out=again.append)
    assert not any(line.startswith(("demo records added", "demo call history")) for line in again)
    assert len(studio.store.list(SYSTEM, "Customer").rows) == 5


def test_bad_demo_records_are_refused_whole(tmp_path):
    app = create_app(project(tmp_path / "p"))
    store = app.state.studio.store
    records = tmp_path / "demo.yaml"
    records.write_text("Customer:\n  - {name: 好, phone: '13800138000'}\n  - {name: 坏, phone: 'abc'}\n",
                       encoding="utf-8")
    with pytest.raises(studio_cmd.DemoError, match="Customer #2"):
        studio_cmd.seed(store, records)
    assert store.list(SYSTEM, "Customer").rows == []
    records.write_text("Nothing:\n  - {a: 1}\n", encoding="utf-8")
    with pytest.raises(studio_cmd.DemoError, match="no entity 'Nothing'"):
        studio_cmd.seed(store, records)
    records.write_text("Customer:\n  - {name: x, phone: '13800138000', manager: {agent: nobody}}\n", encoding="utf-8")
    with pytest.raises(studio_cmd.DemoError, match="no AccountManager has"):
        studio_cmd.seed(store, records)


# ---------------------------------------------------------------------- clock and telephony options

@contextlib.contextmanager
def ari_stand_in(password: str):
    """A loopback stand-in for Asterisk's ARI: `GET /ari/asterisk/info` answers with the user
    flowdesk and `password`, 401 otherwise.  Yields its base URL."""
    expected = "Basic " + base64.b64encode(f"flowdesk:{password}".encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.path.startswith("/ari/asterisk/info") and self.headers.get("Authorization") == expected
            body = b'{"system": {"version": "22.10.1"}}' if ok else b'{"message": "Authentication required"}'
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ari"
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/ari"


@pytest.fixture
def no_ari_environment(monkeypatch):
    for variable in ("FLOWDESK_ARI_URL", "FLOWDESK_ARI_USER", "FLOWDESK_ARI_PASSWORD", "FLOWDESK_ARI_APP"):
        monkeypatch.delenv(variable, raising=False)


def test_clock_and_telephony_options_and_their_defaults():
    args = parse()
    assert (args.at, args.tz, args.telephony, args.ari, args.user, args.password, args.app) == \
        (None, "Asia/Shanghai", "simulated", None, None, None, None)
    args = parse("--at", "2026-11-23 10:00", "--tz", "Europe/Paris", "--telephony", "auto", "--ari", "http://a/ari",
                 "--ari-user", "u", "--ari-password", "p", "--ari-app", "desk")
    assert (args.at, args.tz, args.telephony, args.ari, args.user, args.password, args.app) == \
        ("2026-11-23 10:00", "Europe/Paris", "auto", "http://a/ari", "u", "p", "desk")
    with pytest.raises(SystemExit):
        parse("--telephony", "pigeon")


def test_a_bad_at_or_zone_is_a_usage_error(tmp_path, capsys):
    folder = project(tmp_path / "p")
    assert studio_cmd.cmd_studio(parse("--project", str(folder), "--at", "tomorrow")) == 2
    assert "--at 'tomorrow' is not a date and time" in capsys.readouterr().err
    assert studio_cmd.cmd_studio(parse("--project", str(folder), "--at", "2026-11-23 10:00", "--tz", "Mars/Base")) == 2
    assert "--tz 'Mars/Base' is not a time zone" in capsys.readouterr().err


def test_simulated_telephony_is_the_default_and_needs_no_asterisk(tmp_path, no_ari_environment):
    choice = studio_cmd.choose_telephony(parse(), tmp_path)
    assert choice.ari is None and choice.said.startswith("simulated")


def test_auto_without_a_password_is_simulated_and_says_why(tmp_path, no_ari_environment):
    choice = studio_cmd.choose_telephony(parse("--telephony", "auto"), tmp_path)
    assert choice.ari is None and "no ARI password: give --ari-password or FLOWDESK_ARI_PASSWORD" in choice.said


def test_auto_takes_asterisk_when_its_ari_answers_with_the_password(tmp_path, monkeypatch, no_ari_environment):
    with ari_stand_in("sesame") as url:
        monkeypatch.setenv("FLOWDESK_ARI_URL", url)
        monkeypatch.setenv("FLOWDESK_ARI_PASSWORD", "sesame")   # read as flowdesk serve reads it
        choice = studio_cmd.choose_telephony(parse("--telephony", "auto", "--ari-app", "desk"), tmp_path)
        assert choice.ari is not None and (choice.ari.ari, choice.ari.user, choice.ari.app) == (url, "flowdesk", "desk")
        assert choice.said == f"Asterisk at {url}, ARI application 'desk'"
        refused = studio_cmd.choose_telephony(parse("--telephony", "auto", "--ari-password", "wrong"), tmp_path)
        assert refused.ari is None and refused.said.startswith("simulated (") and "401" in refused.said


def test_auto_with_no_asterisk_answering_is_simulated(tmp_path, no_ari_environment):
    choice = studio_cmd.choose_telephony(parse("--telephony", "auto", "--ari", closed_port_url(),
                                               "--ari-password", "x"), tmp_path)
    assert choice.ari is None and "no Asterisk answers ARI" in choice.said


def test_asterisk_not_answering_yet_is_connected_to_when_it_does(tmp_path, no_ari_environment):
    url = closed_port_url()
    choice = studio_cmd.choose_telephony(parse("--telephony", "asterisk", "--ari", url, "--ari-password", "x"),
                                         tmp_path)
    assert choice.ari is not None and choice.ari.ari == url and "connecting when it answers" in choice.said


def test_asterisk_without_a_password_or_with_a_refused_one_is_a_usage_error(tmp_path, capsys, no_ari_environment):
    folder = project(tmp_path / "p")
    assert studio_cmd.cmd_studio(parse("--project", str(folder), "--telephony", "asterisk")) == 2
    assert "no ARI password: give --ari-password or FLOWDESK_ARI_PASSWORD" in capsys.readouterr().err
    with ari_stand_in("sesame") as url:
        argv = ("--project", str(folder), "--telephony", "asterisk", "--ari", url, "--ari-password", "wrong")
        assert studio_cmd.cmd_studio(parse(*argv)) == 2
        err = capsys.readouterr().err
        assert "refused user 'flowdesk'" in err and "401" in err and "check --ari-user and --ari-password" in err
