"""`flowdesk serve` and `flowdesk asterisk-config`: the mistakes a user can make are told, not raised.
(Serving real calls is tested against the sandbox Asterisk in tests/asterisk.)"""
from __future__ import annotations

from pathlib import Path

import pytest

from flowdesk.cli import main

PROJECT = Path(__file__).resolve().parents[1]
GOOD = 'queue general {\n    strategy longest_idle\n}\n\nflow main {\n    answer\n    say "您好"\n    enqueue general\n}\n'


@pytest.fixture(autouse=True)
def no_ari_settings(monkeypatch):
    for name in ("FLOWDESK_ARI_URL", "FLOWDESK_ARI_USER", "FLOWDESK_ARI_PASSWORD", "FLOWDESK_ARI_APP",
                 "FLOWDESK_AGENTS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def good(tmp_path) -> Path:
    (tmp_path / "main.flow").write_text(GOOD, encoding="utf-8")
    return tmp_path


def test_serve_without_a_password_says_where_to_give_one(good, capsys):
    assert main(["serve", str(good)]) == 2
    assert "no ARI password: give --password, FLOWDESK_ARI_PASSWORD or `password:` in --config" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (None, "cannot read --config"),
    ("ari: [unclosed", "is not valid YAML"),
    ("- a list", "must be a mapping of settings"),
    ("pasword: x", "unknown setting 'pasword'"),
])
def test_serve_refuses_a_bad_config_file(good, tmp_path, capsys, content, message):
    config = tmp_path / "serve.yaml"
    if content is not None:
        config.write_text(content, encoding="utf-8")
    assert main(["serve", str(good), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_serve_reads_its_settings_from_the_config_file_and_refuses_bad_agents_mode(good, tmp_path, capsys):
    config = tmp_path / "serve.yaml"
    config.write_text("password: secret\nagents: some\n", encoding="utf-8")
    assert main(["serve", str(good), "--config", str(config)]) == 2
    assert "--agents must be `ready` or `none`, not 'some'" in capsys.readouterr().err


def test_serve_a_project_with_errors_exits_1_before_connecting(tmp_path, capsys):
    (tmp_path / "bad.flow").write_text("flow main {\n    enqueue genral\n}\n", encoding="utf-8")
    assert main(["serve", str(tmp_path), "--password", "x", "--ari", "http://127.0.0.1:9/ari"]) == 1
    assert "not served" in capsys.readouterr().err


def test_serve_refuses_a_start_time_it_cannot_read(good, capsys):
    assert main(["serve", str(good), "--password", "x", "--at", "tomorrow"]) == 2
    assert "--at 'tomorrow' is not a date and time" in capsys.readouterr().err


def test_asterisk_config_names_every_agent_without_a_password(monkeypatch, capsys):
    monkeypatch.setenv("FLOWDESK_AGENT_PASSWORD_8001", "pw-8001")
    assert main(["asterisk-config", str(PROJECT / "flows"), str(PROJECT / "schemas")]) == 1
    err = capsys.readouterr().err
    assert "agent wang_fang (extension 8002) has no SIP password" in err
    assert "li_na" not in err
    assert "FLOWDESK_AGENT_PASSWORD_<EXTENSION>" in err


def test_asterisk_config_writes_both_files(monkeypatch, tmp_path, capsys):
    for extension in ("8001", "8002", "8003", "8004", "8101", "8102", "8201", "8301", "8401"):
        monkeypatch.setenv(f"FLOWDESK_AGENT_PASSWORD_{extension}", f"pw-{extension}")
    code = main(["asterisk-config", str(PROJECT / "flows"), str(PROJECT / "schemas"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0, err
    pjsip = (tmp_path / "out" / "pjsip_flowdesk.conf").read_text()
    assert "[8001]" in pjsip and "password = pw-8001" in pjsip
    assert "Stasis(flowdesk," in (tmp_path / "out" / "extensions_flowdesk.conf").read_text()
