"""`flowdesk serve` as a real process on the sandbox Asterisk: it answers calls, refuses a wrong
password plainly, and when it is killed outright a caller waiting in a queue is still served by the
next process."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.ari.lanes import SAVED_STATE
from hotline import HOTLINE, PROJECT
from phones import AGENT_DIAL, Phones, until

pytestmark = pytest.mark.asterisk


def serve(asterisk, tmp_path: Path, *extra: str, password: str | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "flowdesk.cli", "serve", str(PROJECT / "flows"), str(PROJECT / "schemas"),
               "--ari", asterisk.url, "--user", asterisk.user, "--password", password or asterisk.password,
               "--agent-dial", AGENT_DIAL, "--at", "2026-11-23 10:00",
               "--media-dir", str(asterisk.root / "var/lib/flowdesk/media"),
               "--media-dir-in-asterisk", "/var/lib/flowdesk/media",
               "--recordings", str(tmp_path / "recordings"), "--db", f"sqlite:///{tmp_path / 'calls.db'}", *extra]
    return subprocess.Popen(command, cwd=PROJECT, stderr=subprocess.PIPE, text=True)


def wait_serving(process: subprocess.Popen) -> str:
    line = process.stderr.readline()
    assert line.startswith("serving"), line + process.stderr.read()
    return line


def test_a_wrong_password_is_refused_plainly(asterisk, tmp_path):
    process = serve(asterisk, tmp_path, password="wrong")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "refused us" in err and "check --user and --password" in err and "Traceback" not in err


def test_a_killed_runtime_does_not_lose_the_caller_waiting_in_the_queue(asterisk, tmp_path):
    async def scenario():
        first = serve(asterisk, tmp_path, "--agents", "none")
        second = None
        try:
            await asyncio.to_thread(wait_serving, first)
            async with Phones(asterisk.url, asterisk.user, asterisk.password) as phones:
                caller = await phones.call(HOTLINE, "13800138020")
                await asyncio.wait_for(caller.answered.wait(), 30)
                for _ in range(60):  # greeting, then the menu: 0 for a person
                    await asyncio.sleep(1)
                    await caller.press("0")
                    if await phones.client.get_var(caller.runtime_id, SAVED_STATE):
                        break
                assert await phones.client.get_var(caller.runtime_id, SAVED_STATE), "the caller never queued"
                first.send_signal(signal.SIGKILL)
                first.wait(10)
                await asyncio.sleep(1)
                assert not caller.ended.is_set()
                second = serve(asterisk, tmp_path, "--agents", "ready")
                line = await asyncio.to_thread(wait_serving, second)
                agent = await phones.agent_rings(60)
                await agent.answer()
                parties = []
                for _ in range(300):  # the adopted caller is bridged once the runtime sees the answer
                    parties = next((b["channels"] for b in await phones.client.list_bridges()
                                    if caller.runtime_id in b.get("channels", [])), [])
                    if len(parties) == 2:
                        break
                    await asyncio.sleep(0.1)
                await caller.hang_up()
                return line, parties
        finally:
            for process in (first, second):
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(30)

    line, parties = asyncio.run(asyncio.wait_for(scenario(), 240))
    assert "on ARI application 'flowdesk'" in line
    assert len(parties) == 2
