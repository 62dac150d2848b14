"""The ARI client and its event stream against the real Asterisk of scripts/asterisk-sandbox.

Calls come into the test's own application (a name of its own per run, so other tests' `flowdesk`
application and a parallel run are untouched): the client originates `Local/N@flowdesk-transfer`,
whose other half answers at once and stays on the line, so our channel enters the application
answered, under the id we gave it.
"""
from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from dataclasses import dataclass, field

import pytest

from runtime.ari.client import (AriClient, AriError, BadRequest, Conflict, Failed, NotFound,
                                PreconditionFailed, Unprocessable)
from runtime.ari.events import EventStream, resource_ids

pytestmark = pytest.mark.asterisk

RUN = uuid.uuid4().hex[:6]
APP = f"flowdesk-client-test-{RUN}"


def our_id(name: str) -> str:
    return f"fct-{RUN}-{name}"


class Heard:
    """The events the stream handed over, and a wait for the one about a given id."""

    def __init__(self):
        self.events: list[dict] = []
        self.arrived = asyncio.Event()

    def __call__(self, event: dict) -> None:
        self.events.append(event)
        self.arrived.set()

    async def about(self, kind: str, resource_id: str, timeout: float = 10.0) -> dict:
        """The first `kind` event whose most specific resource is `resource_id`."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event["type"] == kind and resource_ids(event)[:1] == [resource_id]:
                    return event
            self.arrived.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind} about {resource_id} within {timeout} s; "
                                     f"heard {[(e['type'], resource_ids(e)) for e in self.events]}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)


@dataclass
class Ari:
    client: AriClient
    stream: EventStream
    heard: Heard
    running: asyncio.Task  # the stream's run()
    on_connect_calls: list[bool] = field(default_factory=list)

    async def call(self, name: str, **options) -> str:
        """A channel with our id, answered and in our application."""
        channel_id = our_id(name)
        await self.client.originate(channel_id, f"Local/{name}@flowdesk-transfer", **options)
        await self.heard.about("StasisStart", channel_id)
        return channel_id


@contextlib.asynccontextmanager
async def connected(asterisk, **client_options):
    """A client and a running event stream for APP; every channel of ours hung up afterwards."""
    heard, on_connect_calls = Heard(), []

    async def on_connect(reconnected: bool) -> None:
        on_connect_calls.append(reconnected)

    async with AriClient(asterisk.url, asterisk.user, asterisk.password, APP, **client_options) as client:
        stream = EventStream(client, heard, on_connect, backoff_start=0.05)
        running = asyncio.create_task(stream.run())
        try:
            await stream.wait_connected(10)
            yield Ari(client, stream, heard, running, on_connect_calls)
        finally:
            await stream.close()
            await running
            await hang_up_ours(client)


async def hang_up_ours(client: AriClient) -> None:
    for channel in await client.list_channels():
        if channel["id"].startswith(f"fct-{RUN}"):
            with contextlib.suppress(NotFound):
                await client.hangup(channel["id"])


def raised(error_type: type[AriError], coroutine) -> AriError:
    """The error `coroutine` raised, which must be exactly of `error_type`."""
    async def catch():
        with pytest.raises(AriError) as caught:
            await coroutine
        assert type(caught.value) is error_type, f"{caught.value!r} is not {error_type.__name__}"
        return caught.value
    return catch()


def test_what_is_not_there_raises_typed_errors_with_asterisks_reason(asterisk):
    async def check():
        async with connected(asterisk) as ari:
            client = ari.client
            gone = await raised(NotFound, client.get_channel("nope"))
            assert (gone.status, gone.method, gone.path, gone.message) == (404, "GET", "/channels/nope",
                                                                          "Channel not found")
            assert str(gone) == "GET /channels/nope: 404 Channel not found"
            await raised(NotFound, client.hangup("nope"))
            await raised(NotFound, client.answer("nope"))
            assert (await raised(NotFound, client.get_playback("nope"))).message == "Playback not found"
            await raised(NotFound, client.stop_playback("nope"))
            await raised(NotFound, client.destroy_bridge("nope"))
            await raised(NotFound, client.add_to_bridge("nope", "nope"))
            await raised(NotFound, client.stop_recording("nope"))
            await raised(NotFound, client.stored_recording_file("nope"))
            await raised(NotFound, client.delete_stored_recording("nope"))
            await raised(NotFound, client.reload_module("no_such_module.so"))
            assert await client.get_var("nope", "X") is None
            # An endpoint Asterisk cannot reach: 500 "Allocation failed", not 422, and not retried.
            started = time.monotonic()
            failed = await raised(Failed, client.originate(our_id("bogus"), "Bogus/nobody"))
            assert (failed.status, failed.message) == (500, "Allocation failed")
            assert isinstance(failed, Unprocessable) and time.monotonic() - started < 0.5
            assert (await raised(BadRequest, client.originate(our_id("x"), "no-slash"))).message == (
                "Invalid endpoint specified")
            assert (await raised(Unprocessable, client.subscribe("channel:nope"))).status == 422
            await raised(BadRequest, client.subscribe("nonsense:nope"))

    asyncio.run(check())


def test_a_call_originated_with_our_id_enters_our_application(asterisk):
    async def check():
        async with connected(asterisk) as ari:
            client, channel_id = ari.client, our_id("100")
            reply = await client.originate(channel_id, "Local/100@flowdesk-transfer", app_args="agent,li_na",
                                           caller_id="13800138000", variables={"FLOWDESK_CALL": "c-1"})
            assert reply["id"] == channel_id
            start = await ari.heard.about("StasisStart", channel_id)
            assert start["args"] == ["agent", "li_na"] and start["application"] == APP
            assert start["channel"]["state"] == "Up"
            assert (await client.get_channel(channel_id))["caller"]["number"] == "13800138000"
            assert channel_id in [channel["id"] for channel in await client.list_channels()]
            assert await client.get_var(channel_id, "FLOWDESK_CALL") == "c-1"
            await client.set_var(channel_id, "FLOWDESK_STATE", '{"step": "menu 1"}')
            assert await client.get_var(channel_id, "FLOWDESK_STATE") == '{"step": "menu 1"}'
            assert await client.get_var(channel_id, "NEVER_SET") is None
            await client.answer(channel_id)  # already up: Asterisk says yes again
            await client.ring(channel_id)
            await client.hangup(channel_id)
            await ari.heard.about("StasisEnd", channel_id)
            await ari.heard.about("ChannelDestroyed", channel_id)

    asyncio.run(check())


def test_a_live_call_refused_for_its_state(asterisk):
    async def check():
        async with connected(asterisk) as ari:
            client = ari.client
            channel_id = await ari.call("101")
            exists = await raised(Conflict, client.originate(channel_id, "Local/101@flowdesk-transfer"))
            assert exists.message == "Channel with given unique ID already exists"
            other_half = f"{channel_id};2"  # in the dialplan, not in our application
            assert (await raised(Conflict, client.answer(other_half))).message == "Channel not in Stasis application"
            await raised(Conflict, client.play(other_half, our_id("p-other"), "sound:beep"))
            await client.create_bridge(our_id("b-state"))
            await raised(Unprocessable, client.add_to_bridge(our_id("b-state"), other_half))
            assert (await raised(BadRequest, client.add_to_bridge(our_id("b-state"), "nope"))).message == (
                "Channel not found")
            await raised(Unprocessable, client.remove_from_bridge(our_id("b-state"), channel_id))
            await client.destroy_bridge(our_id("b-state"))
            await raised(Unprocessable, client.record(channel_id, our_id("r-bad"), format="no-such-format"))
            created = our_id("created")  # in our application, but never dialled
            await client.request("POST", "/channels/create", params={"endpoint": "Local/102@flowdesk-transfer",
                                                                     "app": APP, "channelId": created})
            assert (await raised(PreconditionFailed, client.answer(created))).message == "Channel in invalid state"

    asyncio.run(check())


def test_a_playback_is_reported_under_our_playback_id(asterisk):
    async def check():
        async with connected(asterisk) as ari:
            client = ari.client
            channel_id, playback_id = await ari.call("110"), our_id("p-110")
            reply = await client.play(channel_id, playback_id, ["sound:hello-world", "sound:beep"], lang="en")
            assert (reply["id"], reply["media_uri"], reply["next_media_uri"]) == (
                playback_id, "sound:hello-world", "sound:beep")
            started = await ari.heard.about("PlaybackStarted", playback_id)
            assert resource_ids(started) == [playback_id, channel_id]
            assert (await client.get_playback(playback_id))["state"] == "playing"
            await client.stop_playback(playback_id)
            finished = await ari.heard.about("PlaybackFinished", playback_id)
            assert finished["playback"]["target_uri"] == f"channel:{channel_id}"
            await forgotten(lambda: client.get_playback(playback_id))
            await raised(NotFound, client.stop_playback(playback_id))

    asyncio.run(check())


def test_a_bridge_is_made_joined_left_and_destroyed(asterisk):
    async def check():
        async with connected(asterisk) as ari:
            client, bridge_id = ari.client, our_id("b-120")
            caller, agent = await ari.call("120"), await ari.call("121")
            assert (await client.create_bridge(bridge_id, name="call 120"))["bridge_type"] == "mixing"
            await raised(Conflict, client.create_bridge(bridge_id))
            # Our own bridge's events come only once we subscribe (its channels' events come anyway).
            assert bridge_id in (await client.subscribe(f"bridge:{bridge_id}"))["bridge_ids"]
            await client.add_to_bridge(bridge_id, [caller, agent])
            for channel_id in (caller, agent):
                entered = await ari.heard.about("ChannelEnteredBridge", channel_id)
                assert resource_ids(entered) == [channel_id, bridge_id]
            bridges = {bridge["id"]: bridge for bridge in await client.list_bridges()}
            assert sorted(bridges[bridge_id]["channels"]) == sorted([caller, agent])
            await client.remove_from_bridge(bridge_id, agent)
            await ari.heard.about("ChannelLeftBridge", agent)
            await client.destroy_bridge(bridge_id)
            await ari.heard.about("BridgeDestroyed", bridge_id)
            await raised(NotFound, client.destroy_bridge(bridge_id))

    asyncio.run(check())


def test_keys_music_a_snoop_and_leaving_for_the_dialplan(asterisk):
    async def check():
        async with connected(asterisk) as ari:
            client = ari.client
            channel_id = await ari.call("130")
            await client.send_dtmf(channel_id, "12", between_ms=50, duration_ms=80)
            keyed = [await ari.heard.about("ChannelDtmfReceived", f"{channel_id};2")]
            while len(keyed) < 2:  # the other half hears them, one event per key
                await asyncio.sleep(0.05)
                keyed = [e for e in ari.heard.events if e["type"] == "ChannelDtmfReceived"
                         and e["channel"]["id"] == f"{channel_id};2"]
            assert [e["digit"] for e in keyed] == ["1", "2"]
            await client.start_moh(channel_id, "default")
            await client.stop_moh(channel_id)
            snoop_id = our_id("s-130")
            assert (await client.snoop(channel_id, snoop_id, app_args="snoop"))["id"] == snoop_id
            assert (await ari.heard.about("StasisStart", snoop_id))["args"] == ["snoop"]
            await client.hangup(snoop_id)
            await client.continue_in_dialplan(channel_id, context="flowdesk-transfer", extension="131", priority=1)
            await ari.heard.about("StasisEnd", channel_id)
            await raised(Conflict, client.answer(channel_id))

    asyncio.run(check())


def test_a_recording_is_made_stopped_fetched_and_deleted(asterisk):
    async def check():
        async with connected(asterisk) as ari:
            client = ari.client
            channel_id, name = await ari.call("140"), our_id("r-140")
            try:
                await client.record(channel_id, name, max_duration_s=10, beep=False)
            except AriError as error:
                raise AssertionError(f"{error}: the sandbox's {asterisk.root}/var/spool/asterisk/recording "
                                     "must exist for Asterisk to record") from error
            started = await ari.heard.about("RecordingStarted", name)
            assert resource_ids(started) == [name, channel_id]
            await asyncio.sleep(0.5)
            await client.stop_recording(name)
            await ari.heard.about("RecordingFinished", name)
            assert name in [stored["name"] for stored in await client.list_stored_recordings()]
            audio = await client.stored_recording_file(name)
            assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"  # the other half is silent: maybe no frames
            await client.delete_stored_recording(name)
            await raised(NotFound, client.stored_recording_file(name))

    asyncio.run(check())


def test_the_application_and_asterisk_itself(asterisk):
    async def check():
        async with connected(asterisk) as ari:
            client = ari.client
            assert (await client.application())["name"] == APP
            channel_id = await ari.call("150")
            assert channel_id in (await client.subscribe(f"channel:{channel_id}"))["channel_ids"]
            assert (await client.info())["system"]["version"].startswith("22.")
            assert (await client.ping())["ping"] == "pong"
            assert isinstance(await client.list_endpoints(), list)
            await client.reload_module("cdr_csv.so")
            await raised(Conflict, client.reload_module("app_echo.so"))  # "Module does not support reloading"

    asyncio.run(check())


def test_500_concurrent_requests_through_16_slots_all_succeed(asterisk):
    async def check():
        async with AriClient(asterisk.url, asterisk.user, asterisk.password, APP, max_concurrent=16) as client:
            replies = await asyncio.gather(*(client.ping() for _ in range(500)))
            assert [reply["ping"] for reply in replies] == ["pong"] * 500

    asyncio.run(check())


def test_the_stream_reconnects_after_a_drop_and_says_so(asterisk):
    async def check():
        async with connected(asterisk) as ari:
            assert (ari.stream.connections, ari.on_connect_calls) == (1, [False])
            ari.stream.websocket.get_extra_info("socket").shutdown(socket.SHUT_RDWR)  # the connection dies
            await until(lambda: ari.stream.connected.is_set() and ari.stream.connections == 2)
            assert ari.on_connect_calls == [False, True]
            await ari.stream.websocket.close()  # a close nobody asked the stream for
            await until(lambda: ari.stream.connected.is_set() and ari.stream.connections == 3)
            assert ari.on_connect_calls == [False, True, True]
            await ari.call("160")  # events flow on the new connection

    asyncio.run(check())


def test_close_ends_run_at_once(asterisk):
    async def check():
        async with connected(asterisk) as ari:
            started = time.monotonic()
            await ari.stream.close()
            assert ari.running.done() and time.monotonic() - started < 0.5
            assert ari.running.exception() is None
            assert not ari.stream.connected.is_set() and ari.stream.websocket is None

    asyncio.run(check())


async def forgotten(request, timeout: float = 5.0) -> None:
    """`request()` raises NotFound within `timeout`: Asterisk forgets a playback just after its last event."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await request()
        except NotFound:
            return
        assert time.monotonic() < deadline, "still there"
        await asyncio.sleep(0.02)


async def until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.02)
