"""The ARI client without Asterisk: an aiohttp server on 127.0.0.1 plays ARI, so error mapping,
parameter encoding, retries, bounded concurrency and the event stream's reconnects are seen
exactly; and resource_ids on events shaped as Asterisk 22 sends them."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from runtime.ari.client import (AriClient, AriError, AriUnavailable, BadRequest, Conflict, Failed, NotFound,
                                PreconditionFailed, Unprocessable, basic_authorization)
from runtime.ari.events import EventStream, resource_ids

AUTHORIZATION = basic_authorization("flowdesk", "secret")


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    body: object
    authorization: str | None


@dataclass
class FakeAri:
    """Answers each request with the next reply queued for its method and path (default 200 {})."""

    replies: dict[tuple[str, str], list] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    delay: float = 0.0
    in_flight: int = 0
    most_in_flight: int = 0

    def reply(self, method: str, path: str, *replies) -> None:
        self.replies.setdefault((method, "/ari" + path), []).extend(replies)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.seen.append(Seen(request.method, request.path, dict(request.query), body,
                              request.headers.get("Authorization")))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        queued = self.replies.get((request.method, request.path))
        reply = queued.pop(0) if queued else {}
        return reply if isinstance(reply, web.StreamResponse) else web.json_response(reply)


def status(code: int, body: object = None) -> web.Response:
    if body is None:
        return web.Response(status=code)
    if isinstance(body, str):
        return web.Response(status=code, text=body, content_type="text/html")
    return web.json_response(body, status=code)


@contextlib.asynccontextmanager
async def serving(handler, port: int = 0, on_shutdown=None):
    """An aiohttp server on 127.0.0.1 whose every path goes to `handler`; yields its port."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    if on_shutdown is not None:
        app.on_shutdown.append(on_shutdown)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def client_of(fake: FakeAri, **options):
    async with serving(fake.handle) as port:
        async with AriClient(f"http://127.0.0.1:{port}/ari/", "flowdesk", "secret", "flowdesk", **options) as client:
            yield client


def run(coroutine):
    return asyncio.run(coroutine)


# --- error mapping


@pytest.mark.parametrize("reply, error_type", [
    (status(400, {"message": "Invalid endpoint specified"}), BadRequest),
    (status(404, {"message": "Channel not found"}), NotFound),
    (status(409, {"message": "Channel not in Stasis application"}), Conflict),
    (status(412, {"message": "Channel in invalid state"}), PreconditionFailed),
    (status(422, {"message": "Event source does not exist"}), Unprocessable),
    (status(500, {"error": "Allocation failed"}), Failed),
    (status(401, {"message": "Authentication required"}), AriError),
])
def test_each_refusal_raises_its_type_with_asterisks_message(reply, error_type):
    async def check():
        fake = FakeAri()
        fake.reply("POST", "/channels/c-1/play/p-1", reply)
        async with client_of(fake) as client:
            with pytest.raises(AriError) as caught:
                await client.play("c-1", "p-1", "sound:beep")
        error = caught.value
        assert type(error) is error_type
        message = json.loads(reply.body)
        message = message.get("message") or message.get("error")
        assert (error.status, error.method, error.path, error.message) == (
            reply.status, "POST", "/channels/c-1/play/p-1", message)
        assert str(error) == f"POST /channels/c-1/play/p-1: {reply.status} {message}"
        assert len(fake.seen) == 1  # a refusal is never retried, not even on an idempotent request

    run(check())


def test_a_failure_is_a_kind_of_unprocessable_so_a_bad_endpoint_is_caught_either_way():
    assert issubclass(Failed, Unprocessable) and not issubclass(Failed, AriUnavailable)


@pytest.mark.parametrize("reply", [status(503, {"message": "Service Unavailable"}), status(502, "<html>bad gateway"),
                                   status(500, "<html>proxy error")])
def test_a_5xx_that_is_not_asterisks_own_answer_means_unavailable(reply):
    async def check():
        fake = FakeAri()
        fake.reply("POST", "/channels/c-1/answer", reply)
        async with client_of(fake) as client:
            with pytest.raises(AriUnavailable) as caught:
                await client.answer("c-1")
        assert caught.value.status == reply.status and caught.value.method == "POST"

    run(check())


def test_no_connection_is_unavailable_after_the_retries():
    async def check():
        async with serving(FakeAri().handle) as port:
            pass  # the port is free again: nobody listens
        async with AriClient(f"http://127.0.0.1:{port}/ari", "u", "p", "flowdesk", retries=2) as client:
            started = time.monotonic()
            with pytest.raises(AriUnavailable) as caught:
                await client.ping()
            assert 0.4 <= time.monotonic() - started < 2  # waited 0.1 + 0.3 s between the three tries
        assert caught.value.status is None
        assert str(caught.value).startswith("GET /asterisk/ping: ClientConnectorError")

    run(check())


def test_a_request_that_takes_too_long_is_unavailable():
    async def check():
        fake = FakeAri(delay=0.5)
        async with client_of(fake, timeout=0.1, retries=1) as client:
            with pytest.raises(AriUnavailable) as caught:
                await client.get_channel("c-1")
        assert str(caught.value) == "GET /channels/c-1: TimeoutError" and len(fake.seen) == 2

    run(check())


# --- retries


def test_idempotent_requests_are_retried_while_asterisk_is_unavailable():
    async def check():
        fake = FakeAri()
        fake.reply("GET", "/channels/c-1", status(503), status(503), {"id": "c-1"})
        fake.reply("POST", "/channels/c-2", status(503), {"id": "c-2"})  # originate: an id we chose
        fake.reply("POST", "/channels/c-3/play/p-3", status(503), {"id": "p-3"})
        fake.reply("POST", "/bridges/b-4", status(503), {"id": "b-4"})
        async with client_of(fake) as client:
            started = time.monotonic()
            assert (await client.get_channel("c-1"))["id"] == "c-1"
            assert 0.4 <= time.monotonic() - started < 1.0  # 0.1 s, then 0.3 s
            assert (await client.originate("c-2", "Local/1@x"))["id"] == "c-2"
            assert (await client.play("c-3", "p-3", "sound:beep"))["id"] == "p-3"
            assert (await client.create_bridge("b-4"))["id"] == "b-4"
        assert [seen.path for seen in fake.seen] == ["/ari/channels/c-1"] * 3 + ["/ari/channels/c-2"] * 2 + [
            "/ari/channels/c-3/play/p-3"] * 2 + ["/ari/bridges/b-4"] * 2

    run(check())


def test_other_posts_are_not_retried():
    async def check():
        fake = FakeAri()
        fake.reply("POST", "/channels/c-1/answer", status(503), status(204))
        fake.reply("POST", "/channels/c-1/continue", status(503), status(503), status(204))
        async with client_of(fake) as client:
            with pytest.raises(AriUnavailable):
                await client.answer("c-1")
            with pytest.raises(AriUnavailable):
                await client.request("POST", "/channels/c-1/continue")
            await client.request("POST", "/channels/c-1/continue", idempotent=True)  # said so: retried
        assert [seen.path for seen in fake.seen] == ["/ari/channels/c-1/answer"] + ["/ari/channels/c-1/continue"] * 3

    run(check())


def test_retries_stop_at_the_configured_number():
    async def check():
        fake = FakeAri()
        fake.reply("DELETE", "/channels/c-1", *(status(503) for _ in range(5)))
        async with client_of(fake, retries=3) as client:
            with pytest.raises(AriUnavailable):
                await client.hangup("c-1")
        assert len(fake.seen) == 4

    run(check())


# --- what is sent and what comes back


def test_parameters_are_encoded_as_ari_reads_them():
    async def check():
        fake = FakeAri()
        async with client_of(fake) as client:
            await client.originate("c-1", "Local/1@flowdesk", app_args="agent,li_na", variables={"X": "1"})
            await client.originate("c-2", "PJSIP/8001", caller_id="13800138000", timeout_s=20)
            await client.record("c-1", "r-1", beep=True, max_duration_s=60, terminate_on="#")
            await client.add_to_bridge("b-1", ["c-1", "c-2"])
            await client.play("c-1", "p-1", ["sound:hello-world", "sound:beep"])
            await client.request("GET", "/x", params={"yes": True, "no": False, "gone": None, "n": 3})
        queries = [(seen.method, seen.path, seen.query, seen.body) for seen in fake.seen]
        assert queries == [
            ("POST", "/ari/channels/c-1", {"endpoint": "Local/1@flowdesk", "app": "flowdesk",
                                           "appArgs": "agent,li_na", "timeout": "30"}, {"variables": {"X": "1"}}),
            ("POST", "/ari/channels/c-2", {"endpoint": "PJSIP/8001", "app": "flowdesk", "callerId": "13800138000",
                                           "timeout": "20"}, None),
            ("POST", "/ari/channels/c-1/record", {"name": "r-1", "format": "wav", "maxDurationSeconds": "60",
                                                  "maxSilenceSeconds": "0", "beep": "true", "terminateOn": "#",
                                                  "ifExists": "overwrite"}, None),
            ("POST", "/ari/bridges/b-1/addChannel", {"channel": "c-1,c-2"}, None),
            ("POST", "/ari/channels/c-1/play/p-1", {"media": "sound:hello-world,sound:beep"}, None),
            ("GET", "/ari/x", {"yes": "true", "no": "false", "n": "3"}, None),
        ]

    run(check())


def test_ids_are_one_path_segment_and_the_credentials_go_only_to_ari():
    async def check():
        fake = FakeAri()
        async with client_of(fake) as client:
            await client.get_channel("c-1;2")
            await client.get_channel("a/b?c")
            async with client.session.get(client.url.replace("/ari", "/elsewhere")):
                pass  # a flow's own HTTP step through the same session
        assert [seen.path for seen in fake.seen] == ["/ari/channels/c-1;2", "/ari/channels/a/b?c", "/elsewhere"]
        assert [seen.authorization for seen in fake.seen] == [AUTHORIZATION, AUTHORIZATION, None]

    run(check())


def test_replies_json_empty_and_raw():
    async def check():
        fake = FakeAri()
        fake.reply("GET", "/recordings/stored/r-1/file", web.Response(body=b"RIFF\x00WAVE", content_type="audio/wav"))
        fake.reply("POST", "/channels/c-1/answer", status(204))
        fake.reply("GET", "/channels/c-1/variable", {"value": "menu"}, status(404, {"message": "not found"}))
        async with client_of(fake) as client:
            assert await client.stored_recording_file("r-1") == b"RIFF\x00WAVE"
            assert await client.answer("c-1") is None
            assert await client.get_var("c-1", "STEP") == "menu"
            assert await client.get_var("c-1", "STEP") is None
        assert fake.seen[-1].query == {"variable": "STEP"}

    run(check())


def test_a_client_must_be_opened():
    client = AriClient("http://127.0.0.1:1/ari", "u", "p", "flowdesk")
    with pytest.raises(RuntimeError, match="open"):
        run(client.ping())


# --- bounded concurrency


def test_requests_in_flight_never_exceed_max_concurrent_and_reach_it():
    async def check():
        fake = FakeAri(delay=0.02)
        async with client_of(fake, max_concurrent=4) as client:
            replies = await asyncio.gather(*(client.ping() for _ in range(60)))
        assert len(replies) == 60 and fake.most_in_flight == 4

    run(check())


# --- the event stream


@dataclass
class FakeEvents:
    """The /ari/events WebSocket: each connection gets the events listed for it, then the server
    closes it (or holds it open when the list ends with None)."""

    per_connection: list[list]
    connections: list[dict] = field(default_factory=list)
    open_sockets: set = field(default_factory=set)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        self.connections.append({"query": dict(request.query), "authorization": request.headers.get("Authorization")})
        websocket = web.WebSocketResponse()
        await websocket.prepare(request)
        self.open_sockets.add(websocket)
        messages = self.per_connection[len(self.connections) - 1] if len(self.connections) <= len(
            self.per_connection) else [None]
        for message in messages:
            if message is None:
                async for _ in websocket:
                    pass
                break
            await websocket.send_str(message if isinstance(message, str) else json.dumps(message))
        await websocket.close()
        self.open_sockets.discard(websocket)
        return websocket

    async def shut_down(self, app: web.Application) -> None:
        """The server going away closes its sockets, as Asterisk's does when it stops."""
        for websocket in list(self.open_sockets):
            await websocket.close(code=1001)


@dataclass
class Listener:
    events: list[dict] = field(default_factory=list)
    connects: list[bool] = field(default_factory=list)

    def on_event(self, event: dict) -> None:
        if event.get("boom"):
            raise RuntimeError("a handler failed")
        self.events.append(event)

    async def on_connect(self, reconnected: bool) -> None:
        self.connects.append(reconnected)


async def until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.01)


def test_events_are_handed_over_in_order_and_a_failing_handler_is_logged_not_fatal(caplog):
    async def check():
        server = FakeEvents([[{"type": "StasisStart", "n": 1}, {"type": "X", "boom": True}, "not json",
                              {"type": "StasisEnd", "n": 2}, None]])
        listener = Listener()
        async with serving(server.handle) as port:
            async with AriClient(f"http://127.0.0.1:{port}/ari", "flowdesk", "secret", "flowdesk") as client:
                stream = EventStream(client, listener.on_event, listener.on_connect, subscribe_all=True)
                running = asyncio.create_task(stream.run())
                await stream.wait_connected(5)
                await until(lambda: len(listener.events) == 2)
                await stream.close()
                assert running.done()
        assert [event.get("n") for event in listener.events] == [1, 2]
        assert server.connections == [{"query": {"app": "flowdesk", "subscribeAll": "true"},
                                       "authorization": AUTHORIZATION}]
        assert listener.connects == [False]

    with caplog.at_level(logging.ERROR, logger="flowdesk.ari"):
        run(check())
    handled = [record for record in caplog.records if record.message.startswith("ARI event not handled")]
    assert [record.exc_info[0] for record in handled] == [RuntimeError, json.JSONDecodeError]


def test_the_stream_reconnects_after_the_server_closes_and_while_it_is_down():
    async def check():
        server = FakeEvents([[{"type": "A"}], [{"type": "B"}, None], [{"type": "C"}, None]])
        listener = Listener()
        async with serving(server.handle, on_shutdown=server.shut_down) as port:
            client = AriClient(f"http://127.0.0.1:{port}/ari", "flowdesk", "secret", "flowdesk")
            await client.open()
            stream = EventStream(client, listener.on_event, listener.on_connect, backoff_start=0.05, backoff_max=0.2)
            running = asyncio.create_task(stream.run())
            await until(lambda: stream.connections == 2 and stream.connected.is_set())
            assert listener.connects == [False, True]
        # the server is gone: connection refused, again and again, and the socket is down meanwhile
        await until(lambda: not stream.connected.is_set())
        await asyncio.sleep(0.5)
        assert stream.connections == 2 and not running.done()
        async with serving(server.handle, port, on_shutdown=server.shut_down):
            await until(lambda: stream.connections == 3 and stream.connected.is_set())
            await until(lambda: len(listener.events) == 3)
            started = time.monotonic()
            await stream.close()
            assert running.done() and running.exception() is None and time.monotonic() - started < 0.5
        await client.close()
        assert [event["type"] for event in listener.events] == ["A", "B", "C"]
        assert listener.connects == [False, True, True]

    run(check())


def test_close_before_run_and_twice_is_harmless():
    async def check():
        async with client_of(FakeAri()) as client:
            stream = EventStream(client, lambda event: None)
            await stream.close()
            await asyncio.wait_for(stream.run(), 1)
            await stream.close()

    run(check())


def test_a_failing_on_connect_is_logged_and_the_events_still_come(caplog):
    async def check():
        server = FakeEvents([[{"type": "A"}, None]])
        events = []

        async def on_connect(reconnected):
            raise RuntimeError("reconcile failed")

        async with serving(server.handle) as port:
            async with AriClient(f"http://127.0.0.1:{port}/ari", "flowdesk", "secret", "flowdesk") as client:
                stream = EventStream(client, events.append, on_connect)
                running = asyncio.create_task(stream.run())
                await until(lambda: events)
                await stream.close()
                await running

    with caplog.at_level(logging.ERROR, logger="flowdesk.ari"):
        run(check())
    assert any("on_connect failed" in record.message for record in caplog.records)


# --- resource_ids


CHANNEL = {"id": "c-1", "name": "Local/1@flowdesk-transfer-00000007;1", "state": "Up"}


@pytest.mark.parametrize("event, ids", [
    ({"type": "StasisStart", "args": ["200"], "channel": CHANNEL}, ["c-1"]),
    ({"type": "ChannelDtmfReceived", "digit": "1", "channel": CHANNEL}, ["c-1"]),
    ({"type": "Dial", "dialstatus": "ANSWER", "peer": CHANNEL}, ["c-1"]),
    ({"type": "Dial", "caller": {"id": "c-0"}, "peer": CHANNEL}, ["c-1"]),
    ({"type": "PlaybackStarted", "playback": {"id": "p-1", "target_uri": "channel:c-1", "state": "playing"}},
     ["p-1", "c-1"]),
    ({"type": "PlaybackFinished", "playback": {"id": "p-2", "target_uri": "bridge:b-1"}}, ["p-2", "b-1"]),
    ({"type": "RecordingFinished", "recording": {"name": "r-1", "target_uri": "channel:c-1"}}, ["r-1", "c-1"]),
    ({"type": "ChannelEnteredBridge", "bridge": {"id": "b-1", "channels": ["c-1"]}, "channel": CHANNEL},
     ["c-1", "b-1"]),
    ({"type": "BridgeDestroyed", "bridge": {"id": "b-1"}}, ["b-1"]),
    ({"type": "PlaybackStarted", "playback": {"id": "p-3", "target_uri": "endpoint:PJSIP/8001"}}, ["p-3"]),
    ({"type": "PlaybackStarted", "playback": {"id": "c-1", "target_uri": "channel:c-1"}}, ["c-1"]),
    ({"type": "ApplicationReplaced", "application": "flowdesk"}, []),
])
def test_resource_ids_most_specific_first(event, ids):
    assert resource_ids(event) == ids
