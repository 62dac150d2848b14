"""Publishing while calls run: a call finishes on the version it started with, new calls take the
new one; the ACD takes the new queues' settings and agents without dropping a call."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlmodel import Session, select

from compiler import compile_project
from runtime import commands as c
from runtime.callcenter import CallCenter
from runtime.storage import Call, EventLog
from studio.telephony import LiveCallCenter

REPO = Path(__file__).resolve().parents[1]
HOTLINE = "4008001000"
OLD_GREETING = "您好,欢迎致电星海通信客服热线。"
NEW_GREETING = "您好,这里是星海通信新版热线。"
T0 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.timezone.utc)   # Monday 10:00 in Shanghai
NEW_AGENT = '''
agent he_tao "何涛" {
    extension "8009"
    roles agent
    skills billing 3
    queues general
}
'''


def compiled(**replacements: tuple[str, str]):
    """The example project, with `old` replaced by `new` in the files named (flows/NAME.flow)."""
    texts = {}
    for name, (old, new) in replacements.items():
        path = REPO / "flows" / f"{name}.flow"
        text = path.read_text(encoding="utf-8")
        assert old in text
        texts[path] = text.replace(old, new, 1)
    result = compile_project([REPO / "flows", REPO / "schemas"], texts=texts)
    assert not result.errors, result.errors
    return result.bundle


@pytest.fixture(scope="module")
def old():
    return compiled()


@pytest.fixture(scope="module")
def new():
    return compiled(hotline=(OLD_GREETING, NEW_GREETING), queues=("wrapup 30s", "wrapup 50s"),
                    agents=("agent li_na", NEW_AGENT + "\nagent li_na"))


def said(center: CallCenter, call_id: str) -> list[str]:
    return [m.command.text for m in center.outbox if m.call_id == call_id and isinstance(m.command, c.Say)]


def test_a_running_call_hears_its_version_and_a_new_call_the_new_one(old, new):
    center = CallCenter(old, epoch=T0, prompt_ms=lambda command: 1000)
    center.start_call("before", caller="13800138000", dialed=HOTLINE, at=T0)
    center.advance(T0 + dt.timedelta(milliseconds=500))      # the jingle is still playing
    center.publish(new)
    center.start_call("after", caller="13800138001", dialed=HOTLINE, at=T0 + dt.timedelta(milliseconds=600))
    center.advance(T0 + dt.timedelta(seconds=5))
    assert any(OLD_GREETING in text for text in said(center, "before"))
    assert not any(NEW_GREETING in text for text in said(center, "before"))
    assert any(NEW_GREETING in text for text in said(center, "after"))
    hashes = {row.id: row.bundle_hash for row in center.rows if isinstance(row, Call)}
    assert hashes == {"before": old.hash, "after": new.hash}


def test_the_acd_takes_the_new_agents_and_queue_settings(old, new):
    center = CallCenter(old, epoch=T0)
    center.login("li_na", T0)
    center.publish(new)
    assert center.acd.agent_state("li_na") == ("ready", None)        # logged in agents stay as they are
    center.login("he_tao", T0 + dt.timedelta(seconds=1))
    assert center.acd.agent_state("he_tao") == ("ready", None)
    assert "he_tao" in center.acd.ready_agents("general")
    assert center.acd._queues["general"].wrapup_ms == 50_000


def test_the_live_telephony_logs_each_call_with_its_version(old, new, tmp_path):
    class Clock:
        now = T0

        def __call__(self):
            return self.now

    clock = Clock()
    log = EventLog(f"sqlite:///{tmp_path / 'calls.db'}")
    live = LiveCallCenter(old, event_log=log, clock=clock)
    first = live.place_call("13800138000", HOTLINE)
    clock.now = T0 + dt.timedelta(milliseconds=100)
    live.publish(new)
    second = live.place_call("13800138001", HOTLINE)
    clock.now = T0 + dt.timedelta(seconds=3)
    live.step()
    live.write_rows()
    with Session(log.engine) as session:
        hashes = {call.id: call.bundle_hash for call in session.exec(select(Call))}
    assert hashes == {first: old.hash, second: new.hash}
    assert live.hub.desk("he_tao").state == "logged_out"           # the new agent has a desk
    live.login("he_tao", ready=True)
    assert live.state("he_tao") == ("ready", None)


def test_the_asterisk_telephony_takes_the_new_version_and_speaks_its_prompts_ahead(tmp_path):
    import asyncio

    from studio.telephony_ari import asterisk_call_center
    from tests.test_telephony_ari import settings

    def small(greeting: str, agents: str):
        folder = tmp_path / greeting
        folder.mkdir()
        (folder / "main.flow").write_text(f"""
queue general {{
    ring timeout 10s
}}
{agents}
flow main {{
    entry number "10086"
    say "{greeting}"
    enqueue general
}}
""", encoding="utf-8")
        return compile_project([folder]).bundle

    old = small("旧的欢迎语", 'agent li_na { extension "8001" queues general }')
    new = small("新的欢迎语", 'agent li_na { extension "8001" queues general }\nagent wang { queues general }')
    live = asterisk_call_center(old, settings(tmp_path), crm=None, project=tmp_path,
                                database_url=f"sqlite:///{tmp_path / 'calls.db'}", clock=lambda: T0)

    async def scenario():
        live.publish(new)
        await asyncio.gather(*live._preparing)

    asyncio.run(scenario())
    assert live.edge.center.bundle is new and live.bundle is new
    assert live.hub.desk("wang").state == "logged_out"
    spoken = [p for p in (tmp_path / "media").rglob("*") if p.is_file()]
    assert spoken, "the new version's prompts are spoken ahead"
