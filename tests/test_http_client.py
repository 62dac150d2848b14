"""The flows' outbound HTTP on aiohttp, against a real aiohttp.web server on 127.0.0.1."""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import time
from decimal import Decimal

import aiohttp
from aiohttp import web

from runtime import commands as c
from runtime.http_client import MAX_REPLY_BYTES, send

TOKEN = "Bearer tok-7f3a9c"


class OutsideSystem:
    """An outside system a flow calls: fixed replies, and what it received."""

    def __init__(self):
        self.received: list[dict] = []
        self.peers: list = []
        self.released = asyncio.Event()  # a slow reply waits for the end of the test
        self.app = web.Application()
        self.app.router.add_route("*", "/{name}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append({"method": request.method, "headers": dict(request.headers),
                              "body": await request.read()})
        self.peers.append(request.transport.get_extra_info("peername"))
        name = request.match_info["name"]
        if name == "balance":
            return web.Response(text='{"amount": 58.20, "name": "张三"}', content_type="application/json")
        if name == "greeting":
            return web.Response(text="OK 你好")
        if name == "broken":
            return web.Response(status=500, text="database down")
        if name == "slow":
            await self.released.wait()
        if name == "tickets":
            return web.json_response({"id": 7}, status=201)
        if name == "not-json":
            return web.Response(text="<html>oops</html>", content_type="application/json")
        if name == "huge":
            return web.Response(body=b"x" * (MAX_REPLY_BYTES + 1))
        return web.Response(status=204)


@contextlib.asynccontextmanager
async def outside_system():
    system = OutsideSystem()
    runner = web.AppRunner(system.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    system.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield system
    finally:
        system.released.set()
        await runner.cleanup()


@contextlib.contextmanager
def refusing_port():
    """A port bound but not listening: connecting to it is refused, and nobody else can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def request(url: str, *, method="GET", headers=None, body=None, timeout_ms=3000, secret=()) -> c.HttpRequest:
    return c.HttpRequest(method=method, url=url, headers=headers or {}, body=body, timeout_ms=timeout_ms,
                         secret=frozenset(secret))


def against_server(requests_for):
    """Send the requests `requests_for(base_url)` gives, one after the other, on one session."""
    async def run():
        async with outside_system() as system, aiohttp.ClientSession() as session:
            replies = [await send(session, r) for r in requests_for(system.url)]
            return system, replies
    return asyncio.run(run())


def reply_to(path: str, **kwargs):
    system, (reply,) = against_server(lambda base: [request(base + path, **kwargs)])
    return system, reply


def test_a_json_reply_is_decoded_keeping_money_exact():
    _, reply = reply_to("/balance")
    assert reply == (200, {"amount": Decimal("58.20"), "name": "张三"})
    assert str(reply[1]["amount"]) == "58.20"


def test_a_text_reply_is_text():
    assert reply_to("/greeting")[1] == (200, "OK 你好")


def test_a_reply_that_claims_json_but_is_not_stays_text():
    assert reply_to("/not-json")[1] == (200, "<html>oops</html>")


def test_an_empty_reply_has_no_body():
    assert reply_to("/nothing")[1] == (204, None)


def test_a_server_error_is_a_reply_with_its_status():
    assert reply_to("/broken")[1] == (500, "database down")


def test_no_reply_within_the_timeout_is_a_timeout():
    async def run():
        async with outside_system() as system, aiohttp.ClientSession() as session:
            started = time.monotonic()
            reply = await send(session, request(system.url + "/slow", timeout_ms=200))
            return reply, time.monotonic() - started
    reply, seconds = asyncio.run(run())
    assert reply == "timeout after 200 ms"
    assert 0.2 <= seconds < 1


def test_a_refused_connection_says_where():
    with refusing_port() as port:
        reply = asyncio.run(_send_alone(request(f"http://127.0.0.1:{port}/balance")))
    assert reply == f"connection refused: 127.0.0.1:{port}"


def test_an_address_that_is_no_web_address_is_a_bad_url():
    for url in ("not a url", "ftp://files.example/x", "http://", "http://[::1/x"):
        assert asyncio.run(_send_alone(request(url))) == f"bad URL: {url}"


def test_a_reply_too_large_is_refused():
    assert reply_to("/huge")[1] == f"reply larger than {MAX_REPLY_BYTES} bytes"


def test_a_record_is_posted_as_json_with_the_flows_headers():
    system, reply = reply_to("/tickets", method="POST", headers={"X-Tenant": "carrier"},
                             body={"amount": Decimal("58.20"), "due": dt.date(2026, 12, 31), "name": "张三"})
    assert reply == (201, {"id": 7})
    (received,) = system.received
    assert received["method"] == "POST"
    assert received["headers"]["Content-Type"] == "application/json"
    assert received["headers"]["X-Tenant"] == "carrier"
    assert received["body"].decode() == '{"amount": "58.20", "due": "2026-12-31", "name": "张三"}'


def test_a_text_body_goes_as_it_is_with_the_flows_own_content_type():
    system, reply = reply_to("/tickets", method="PUT", body="<note>late</note>",
                             headers={"content-type": "application/xml"})
    assert reply[0] == 201
    (received,) = system.received
    assert received["body"] == b"<note>late</note>"
    assert received["headers"]["Content-Type"] == "application/xml"


def test_the_ari_sessions_credentials_never_reach_an_outside_system():
    async def run():
        async with outside_system() as system, aiohttp.ClientSession(
                headers={"Authorization": "Basic YXJpOmFyaQ==", "X-Ari": "1"},
                auth=None, raise_for_status=True) as ari_session:
            broken = await send(ari_session, request(system.url + "/broken"))
            return system, broken
    system, broken = asyncio.run(run())
    assert broken == (500, "database down")  # the ARI session's raise_for_status does not apply
    headers = system.received[0]["headers"]
    assert "Authorization" not in headers and "X-Ari" not in headers


def test_requests_reuse_the_ari_sessions_connections():
    system, replies = against_server(lambda base: [request(base + "/greeting"), request(base + "/balance")])
    assert [r[0] for r in replies] == [200, 200]
    assert system.peers[0] == system.peers[1]  # one kept-alive connection from the shared pool


def test_a_closed_session_is_a_failure_not_an_exception():
    async def run():
        session = aiohttp.ClientSession()
        await session.close()
        return await send(session, request("http://127.0.0.1:1/x"))
    assert asyncio.run(run()) == "the runtime is shutting down"


# ------------------------------------------------------------------ secrets stay out of reasons

def test_a_reason_never_shows_a_header_value():
    with refusing_port() as port:
        # the header's value is the very host the reason would name
        reply = asyncio.run(_send_alone(request(f"http://127.0.0.1:{port}/x", headers={"X-Key": "127.0.0.1"})))
    assert reply == "connection refused"


def test_a_bad_url_built_from_a_secret_is_not_shown():
    url = "tok-7f3a9c://billing"
    assert asyncio.run(_send_alone(request(url, secret={"url"}))) == "bad URL"
    assert asyncio.run(_send_alone(request(url, headers={"Authorization": "tok-7f3a9c"}))) == "bad URL"


def test_a_secret_address_is_not_shown_when_unreachable():
    with refusing_port() as port:
        reply = asyncio.run(_send_alone(request(f"http://127.0.0.1:{port}/x?key=tok-7f3a9c", secret={"url"})))
    assert reply == "connection refused"


def test_a_header_aiohttp_refuses_gives_a_reason_without_its_value():
    async def run():
        async with outside_system() as system, aiohttp.ClientSession() as session:
            return await send(session, request(system.url + "/balance",
                                               headers={"Authorization": TOKEN + "\r\nX-Injected: 1"}))
    reply = asyncio.run(run())
    assert isinstance(reply, str) and reply.startswith("request failed")
    assert "tok-7f3a9c" not in reply and "Injected" not in reply


async def _send_alone(r: c.HttpRequest):
    async with aiohttp.ClientSession() as session:
        return await send(session, r)
