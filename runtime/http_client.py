"""The flows' own requests to outside systems (`http` steps) on aiohttp, for the runtime on Asterisk.

`send` answers one HttpRequest command the way CallCenter's `http` adapter does: `(status, body)`
when a reply came (the body decoded from JSON when the reply says it is JSON, text otherwise), or a
short reason when none did ("timeout after 3000 ms", "connection refused: host:port", "bad URL: ...").
Network problems never raise; the reason goes into the call's log.

The connection pool is the ARI client's: requests go through its session's connector, in a session
of their own.  The ARI session carries ARI's credentials (default headers, basic auth, a base URL);
an outside system must never receive them.

Headers may carry secrets (`secret("TOKEN")`), and a reason is written to the log unmasked, so a
reason never contains a header's value, nor the address when the address carries a secret.
"""
from __future__ import annotations

import json
import socket
from decimal import Decimal
from typing import Any

import aiohttp
from yarl import URL

from runtime import commands
from runtime.values import plain

MAX_REPLY_BYTES = 1 << 20  # a reply a flow reads is small; a larger one is a fault of the outside system


class _TooLarge(Exception):
    pass


async def send(session: aiohttp.ClientSession, request: commands.HttpRequest) -> tuple[int, Any] | str:
    """The reply to `request`, or why there is none, within `request.timeout_ms`."""
    if session.closed:
        return "the runtime is shutting down"  # a closed session has no connector to lend
    if not _is_web_address(request.url):
        return _reason(request, "bad URL", request.url)
    timeout = aiohttp.ClientTimeout(total=request.timeout_ms / 1000)
    data, headers = _payload(request)
    try:
        async with aiohttp.ClientSession(connector=session.connector, connector_owner=False,
                                         timeout=timeout) as own:
            async with own.request(request.method, request.url, headers=headers, data=data) as response:
                return response.status, _decoded(response, await _read(response))
    except TimeoutError:  # aiohttp's connect and read timeouts are TimeoutErrors too
        return f"timeout after {request.timeout_ms} ms"
    except _TooLarge:
        return f"reply larger than {MAX_REPLY_BYTES} bytes"
    except aiohttp.InvalidURL:
        return _reason(request, "bad URL", request.url)
    except aiohttp.ClientConnectorError as error:
        return _unreachable(request, error)
    except (aiohttp.ClientError, OSError, ValueError) as error:
        return _reason(request, "request failed", f"{type(error).__name__}: {error}")


def _is_web_address(url: str) -> bool:
    try:
        parsed = URL(url)
    except ValueError:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.host)


def _payload(request: commands.HttpRequest) -> tuple[bytes | None, dict[str, str]]:
    """The body, text as it is and any other value as JSON, and the flow's headers with the body's
    content type unless the flow gave its own."""
    headers = dict(request.headers)
    if request.body is None:
        return None, headers
    value = plain(request.body)
    if isinstance(value, str):
        data, content_type = value.encode(), "text/plain; charset=utf-8"
    else:
        data, content_type = json.dumps(value, ensure_ascii=False).encode(), "application/json"
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = content_type
    return data, headers


async def _read(response: aiohttp.ClientResponse) -> bytes:
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _decoded(response: aiohttp.ClientResponse, raw: bytes) -> Any:
    """JSON (numbers with a fraction as Decimal, so "58.20" keeps its cents) when the reply says
    it is JSON and is; its text otherwise; None for an empty reply."""
    if not raw:
        return None
    try:
        text = raw.decode(response.charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        text = raw.decode("utf-8", errors="replace")
    mime = response.content_type
    if mime == "application/json" or mime.endswith("+json"):
        try:
            return json.loads(text, parse_float=Decimal)
        except ValueError:
            pass  # the flow's own check says "the reply is not JSON" if it needed JSON
    return text


def _unreachable(request: commands.HttpRequest, error: aiohttp.ClientConnectorError) -> str:
    place = f"{error.host}:{error.port}"
    if isinstance(error.os_error, socket.gaierror):
        return _reason(request, "cannot resolve host", error.host)
    if isinstance(error.os_error, ConnectionRefusedError):
        return _reason(request, "connection refused", place)
    return _reason(request, "cannot connect", f"{place} ({error.os_error.strerror or error.os_error})")


def _reason(request: commands.HttpRequest, summary: str, detail: str) -> str:
    """`summary: detail`, or the summary alone when the detail could show a secret: every header
    value counts as one, and so do the address and body the flow marked secret."""
    private = [value for value in request.headers.values() if value]
    if "body" in request.secret and isinstance(request.body, str) and request.body:
        private.append(request.body)
    if "url" in request.secret or any(value in detail for value in private):
        return summary
    return f"{summary}: {detail}"
