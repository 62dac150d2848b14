"""scripts/asterisk-sandbox against the real Asterisk it runs: ARI, the generated dialplan, the
command line, and its refusals."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import json
import os
import subprocess
import threading
import time

import aiohttp
import pytest

pytestmark = pytest.mark.asterisk


class Events:
    """The event websocket of one ARI application, read until an expected event arrives."""

    def __init__(self, websocket):
        self.websocket = websocket
        self.seen: list[str] = []

    async def next(self, kind: str, timeout: float = 10, **channel) -> dict:
        """The next `kind` event whose channel has the given fields (name_end=... matches a suffix)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = await self.websocket.receive(timeout=left)
            except asyncio.TimeoutError:
                break
            if message.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"event websocket ended ({message.type}) waiting for {kind}")
            event = json.loads(message.data)
            self.seen.append(event["type"])
            if event["type"] == kind and matches(event.get("channel", {}), channel):
                return event
        raise AssertionError(f"no {kind} {channel or ''} within {timeout} s; saw {self.seen}")


def matches(channel: dict, wanted: dict) -> bool:
    suffix = wanted.get("name_end")
    fields = {key: value for key, value in wanted.items() if key != "name_end"}
    return all(channel.get(key) == value for key, value in fields.items()) and (
        suffix is None or channel.get("name", "").endswith(suffix))


@contextlib.asynccontextmanager
async def ari_app(ari, app: str):
    """An HTTP session on ARI and the connected event websocket of application `app`."""
    async with aiohttp.ClientSession(headers=ari.headers(), raise_for_status=True) as session:
        async with session.ws_connect(ari.events_url(app)) as websocket:
            yield session, Events(websocket)


async def originate(session, ari, **params) -> dict:
    variables = params.pop("variables", {})
    async with session.post(f"{ari.url}/channels", params=params, json={"variables": variables}) as reply:
        return await reply.json()


def test_ari_answers_only_with_the_credentials(asterisk):
    async def check():
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{asterisk.url}/asterisk/info", headers=asterisk.headers()) as reply:
                assert reply.status == 200
                assert (await reply.json())["system"]["version"].startswith("22.")
            wrong = asterisk.headers(password=asterisk.password + "x")
            async with session.get(f"{asterisk.url}/asterisk/info", headers=wrong) as reply:
                assert reply.status == 401

    asyncio.run(check())


def test_a_local_call_enters_the_flowdesk_application(asterisk):
    async def check():
        async with ari_app(asterisk, "flowdesk") as (session, events):
            caller = await originate(session, asterisk, endpoint="Local/s@flowdesk", app="flowdesk")
            # The ;2 half runs the [flowdesk] dialplan: Stasis(flowdesk,${EXTEN}).
            callee = await events.next("StasisStart", name_end=";2")
            assert callee["args"] == ["s"]
            async with session.post(f"{asterisk.url}/channels/{callee['channel']['id']}/answer"):
                pass
            # Once answered, the originated ;1 half joins the application too.
            await events.next("StasisStart", id=caller["id"])
            async with session.delete(f"{asterisk.url}/channels/{caller['id']}"):
                pass
            await events.next("StasisEnd", id=callee["channel"]["id"])

    asyncio.run(check())


def test_without_a_runtime_the_caller_hears_an_apology(asterisk):
    async def check():
        # Nobody listens on application `flowdesk`, so Stasis() fails; an observer application
        # holds the ;1 half and sees it answered by the fallback and hung up after the message.
        async with ari_app(asterisk, "flowdesk-observer") as (session, events):
            caller = await originate(session, asterisk, endpoint="Local/123@flowdesk",
                                     app="flowdesk-observer")
            await events.next("StasisStart", id=caller["id"])
            await events.next("StasisEnd", id=caller["id"], timeout=20)
        return caller["name"].replace(";1", ";2")

    callee = asyncio.run(check())
    log = (asterisk.root / "var/log/asterisk/messages.log").read_text()
    assert f"<{callee}> Playing 'sorry.gsm'" in log
    assert f"<{callee}> Playing 'all-circuits-busy-now.gsm'" in log
    # After the hangup only h,1 runs: the pattern's later steps do not run a second time.
    assert f'[h@flowdesk:1] Hangup("{callee}"' in log
    assert f'[h@flowdesk:2] GotoIf("{callee}"' not in log


def test_the_test_caller_keys_in_its_digits_then_hangs_up(asterisk):
    async def check():
        async with ari_app(asterisk, "flowdesk") as (session, events):
            await originate(session, asterisk, endpoint="Local/200@flowdesk", context="flowdesk-test-caller",
                            extension="s", variables={"DIGITS": "42", "HOLD": "2"})
            call = await events.next("StasisStart", name_end=";2")
            assert call["args"] == ["200"]
            call_id = call["channel"]["id"]
            async with session.post(f"{asterisk.url}/channels/{call_id}/answer"):
                pass
            digits = [(await events.next("ChannelDtmfReceived", id=call_id))["digit"] for _ in range(2)]
            assert digits == ["4", "2"]
            await events.next("StasisEnd", id=call_id, timeout=10)

    asyncio.run(check())


def test_asterisk_listens_on_the_ari_port_of_the_loopback_only(asterisk):
    sockets = subprocess.run(["ss", "-H", "-ltnp"], capture_output=True, text=True, check=True).stdout
    listening = {line.split()[3] for line in sockets.splitlines() if '"asterisk"' in line}
    assert listening == {asterisk.url.split("/")[2]}


def test_status_path_and_a_second_start(sandbox, asterisk):
    status = sandbox("status")
    assert status.returncode == 0
    assert f"ARI:    {asterisk.url} (user flowdesk)" in status.stdout
    again = sandbox("start")
    assert again.returncode == 0 and again.stdout.startswith("already running")
    other_port = str(int(asterisk.url.split(":")[2].split("/")[0]) + 1)
    clash = sandbox("start", FLOWDESK_ARI_PORT=other_port)
    assert clash.returncode == 1 and "already running with other settings" in clash.stderr
    assert sandbox("path").stdout.strip() == str(asterisk.root)
    assert sandbox("path", FLOWDESK_ASTERISK_ROOT="/tmp/elsewhere").stdout.strip() == "/tmp/elsewhere"


@pytest.fixture
def as_root():
    if os.geteuid() != 0:
        pytest.skip("the sandbox's checks past the root check need root")


def test_refuses_without_root(sandbox):
    result = sandbox("start", user="nobody" if os.geteuid() == 0 else None)
    assert result.returncode == 1
    assert "must run as root" in result.stderr
    assert "Traceback" not in result.stderr


def test_refuses_when_the_mirror_cannot_be_reached(sandbox, as_root, tmp_path):
    root = tmp_path / "root"
    result = sandbox("start", "--root", str(root), FLOWDESK_DEBIAN_MIRROR="http://127.0.0.1:9/debian")
    assert result.returncode == 1
    assert "cannot reach the Debian mirror" in result.stderr
    assert not root.exists()


def test_a_failed_build_leaves_no_root(sandbox, as_root, tmp_path):
    # A mirror that answers the reachability check but serves no signed release: debootstrap fails.
    (tmp_path / "mirror/dists/sid").mkdir(parents=True)
    (tmp_path / "mirror/dists/sid/Release").write_text("Origin: nobody\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=tmp_path / "mirror")
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        root = tmp_path / "root"
        result = sandbox("start", "--root", str(root),
                         FLOWDESK_DEBIAN_MIRROR=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert result.returncode == 1
    assert "debootstrap failed" in result.stderr
    assert not root.exists() and not (tmp_path / "root.partial").exists()


def test_refuses_a_directory_that_is_not_a_finished_root(sandbox, as_root, tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root/keep.txt").write_text("mine")
    result = sandbox("start", "--root", str(tmp_path / "root"))
    assert result.returncode == 1
    assert "is not a complete sandbox root" in result.stderr
    assert (tmp_path / "root/keep.txt").read_text() == "mine"


def test_stop_unmounts_everything_and_start_comes_back(sandbox, asterisk):
    # Last in this file: it restarts the shared sandbox.
    stopped = sandbox("stop")
    assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped"
    with open("/proc/mounts") as mounts:
        assert not [line for line in mounts if f" {asterisk.root}/" in line]
    assert sandbox("status").returncode == 3
    assert sandbox("stop").stdout.strip() == "not running"
    started = sandbox("start")
    assert started.returncode == 0 and started.stdout.startswith("started"), started.stderr
    assert sandbox("status").returncode == 0
