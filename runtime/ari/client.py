"""The thin Asterisk ARI client: REST requests with typed errors, bounded and retried.

Why our own: no maintained library holds 1,000 concurrent calls. ari-py does not import on
Python 3; ari-client and asyncari use httpx, whose connection pool serialises under load
(encode/httpx#3215: 2,000 concurrent REST requests take 29 s against 0.19 s with aiohttp), and
ari-client completed 0 of 2,000 concurrent calls; asyncari's watchdog kills the whole client when
one handler blocks for about 1.5 s; aioari subscribes to playback events too late under load; none
reconnects. So: aiohttp, one session, the forty-odd endpoints the runtime uses.

The session is shared with the flows' own HTTP steps (one client stack), so the ARI credentials
go on each ARI request, never on the session: an outside system must not receive them.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any
from urllib.parse import quote

import aiohttp

log = logging.getLogger("flowdesk.ari")

IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE"})


class AriError(Exception):
    """A request Asterisk refused or did not answer; `message` is Asterisk's own reason."""

    def __init__(self, method: str, path: str, status: int | None, message: str):
        self.method, self.path, self.status, self.message = method, path, status, message
        code = f"{status} " if status is not None else ""
        super().__init__(f"{method} {path}: {code}{message}")


class BadRequest(AriError):
    """400: a parameter is wrong; also a bridge's addChannel naming a channel that does not exist."""


class NotFound(AriError):
    """404: the channel, bridge, playback or recording is gone (or never was)."""


class Conflict(AriError):
    """409: the channel is not in our Stasis application, or a resource with that id exists."""


class PreconditionFailed(AriError):
    """412: the channel is not in a state for that (created but not dialled, for one)."""


class Unprocessable(AriError):
    """422: Asterisk understood but cannot do it: an unknown media format, a channel not in Stasis
    added to a bridge, an event source that does not exist."""


class Failed(Unprocessable):
    """500 with Asterisk's own reason: Asterisk is there but could not do it. An originate to an
    endpoint it cannot reach answers 500 "Allocation failed" (not 422), so this is a kind of
    Unprocessable; it is not an outage and is never retried."""


class AriUnavailable(AriError):
    """No connection, a timeout, or a 5xx that is not Asterisk's own answer: Asterisk is not there now."""


ERRORS_BY_STATUS: dict[int, type[AriError]] = {
    400: BadRequest, 404: NotFound, 409: Conflict, 412: PreconditionFailed, 422: Unprocessable,
}


def error_for(method: str, path: str, status: int, reason: str | None, fallback: str) -> AriError:
    """The typed error for a reply with `status`; `reason` is Asterisk's JSON message, if it sent one."""
    if status in ERRORS_BY_STATUS:
        kind = ERRORS_BY_STATUS[status]
    elif status in (500, 501) and reason is not None:
        kind = Failed
    elif status >= 500:
        kind = AriUnavailable
    else:
        kind = AriError
    return kind(method, path, status, reason or fallback)


def asterisk_reason(data: bytes) -> str | None:
    """The message of Asterisk's error body, {"message": ...} or {"error": ...}; None if not one."""
    try:
        body = json.loads(data)
    except ValueError:
        return None
    if isinstance(body, dict):
        reason = body.get("message") or body.get("error")
        return str(reason) if reason else None
    return None


def encode_params(params: dict | None) -> dict[str, str]:
    """Query parameters as ARI reads them: booleans as true/false, lists comma-joined, None left out."""
    return {key: encode_value(value) for key, value in (params or {}).items() if value is not None}


def encode_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def ari_path(*parts: Any) -> str:
    """/a/b/c with each part quoted, so an id is always exactly one path segment."""
    return "".join("/" + quote(str(part), safe="") for part in parts)


def comma_joined(values: str | list[str]) -> str:
    return values if isinstance(values, str) else ",".join(values)


def retry_delay(attempt: int) -> float:
    """0.1, 0.3, 0.9 s...: short, since a request waits for it."""
    return 0.1 * 3 ** attempt


def describe(error: BaseException) -> str:
    """"ClientConnectorError: Cannot connect to host ..."; "TimeoutError" when there is no text."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def basic_authorization(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class AriClient:
    """REST access to one Asterisk for one Stasis application."""

    def __init__(self, url: str, user: str, password: str, app: str, *,
                 max_concurrent: int = 256, timeout: float = 10.0, retries: int = 3):
        self.url = url.rstrip("/")
        self.app = app
        self.max_concurrent = max_concurrent
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.retries = retries
        self.headers = {"Authorization": basic_authorization(user, password)}
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None

    # --- the session

    @property
    def session(self) -> aiohttp.ClientSession:
        """The one aiohttp session, for ARI and the flows' HTTP steps alike."""
        if self._session is None:
            raise RuntimeError("AriClient.open() has not been called")
        return self._session

    async def open(self) -> None:
        if self._session is None or self._session.closed:
            # Idle connections are dropped before Asterisk's own 15 s (http.conf session_keep_alive)
            # would close them under a request that is on its way.
            connector = aiohttp.TCPConnector(limit=self.max_concurrent, keepalive_timeout=10.0)
            self._session = aiohttp.ClientSession(connector=connector)
            self._slots = asyncio.Semaphore(self.max_concurrent)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AriClient:
        await self.open()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    # --- requests

    async def request(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
                      idempotent: bool | None = None, raw: bool = False) -> Any:
        """Asterisk's JSON reply (None when empty), or its bytes when `raw`.

        Only an idempotent request is retried, and only when Asterisk is unavailable: by default
        GET, PUT and DELETE; callers say idempotent=True for a POST naming an id they chose."""
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        attempts = 1 + (self.retries if idempotent else 0)
        query = encode_params(params)
        for attempt in range(attempts):
            try:
                return await self._send(method, path, query, body, raw)
            except AriUnavailable as error:
                if attempt + 1 == attempts:
                    raise
                delay = retry_delay(attempt)
                log.info("%s; retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)

    async def _send(self, method: str, path: str, query: dict[str, str], body: Any, raw: bool) -> Any:
        session, slots = self.session, self._slots
        async with slots:
            try:
                async with session.request(method, self.url + path, params=query, json=body,
                                           headers=self.headers, timeout=self.timeout) as reply:
                    data = await reply.read()
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as error:
                raise AriUnavailable(method, path, None, describe(error)) from error
        if reply.status >= 400:
            raise error_for(method, path, reply.status, asterisk_reason(data), reply.reason or "")
        if raw:
            return data
        return json.loads(data) if data else None

    # --- channels

    async def originate(self, channel_id: str, endpoint: str, *, app_args: str = "", caller_id: str | None = None,
                        timeout_s: int = 30, variables: dict[str, str] | None = None,
                        other_channel_id: str | None = None) -> dict:
        """A new channel with our id, entering our application once `endpoint` answers.

        A Local endpoint's other half is `{channel_id};2` unless `other_channel_id` names it."""
        params = {"endpoint": endpoint, "app": self.app, "appArgs": app_args or None, "callerId": caller_id,
                  "timeout": timeout_s, "otherChannelId": other_channel_id}
        body = {"variables": variables} if variables else None
        return await self.request("POST", ari_path("channels", channel_id), params=params, body=body, idempotent=True)

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", ari_path("channels", channel_id, "answer"))

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", ari_path("channels", channel_id), params={"reason": reason})

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", ari_path("channels", channel_id, "ring"))

    async def play(self, channel_id: str, playback_id: str, media: str | list[str], *,
                   lang: str | None = None) -> dict:
        """Media (a list plays in turn) under our playback id, whose events say when it ends."""
        params = {"media": comma_joined(media), "lang": lang}
        return await self.request("POST", ari_path("channels", channel_id, "play", playback_id), params=params,
                                  idempotent=True)

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", ari_path("playbacks", playback_id))

    async def get_playback(self, playback_id: str) -> dict:
        return await self.request("GET", ari_path("playbacks", playback_id))

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        await self.request("POST", ari_path("channels", channel_id, "moh"), params={"mohClass": moh_class})

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("DELETE", ari_path("channels", channel_id, "moh"))

    async def send_dtmf(self, channel_id: str, dtmf: str, *, between_ms: int = 100, duration_ms: int = 100) -> None:
        params = {"dtmf": dtmf, "between": between_ms, "duration": duration_ms}
        await self.request("POST", ari_path("channels", channel_id, "dtmf"), params=params)

    async def get_channel(self, channel_id: str) -> dict:
        return await self.request("GET", ari_path("channels", channel_id))

    async def list_channels(self) -> list[dict]:
        return await self.request("GET", "/channels")

    async def set_var(self, channel_id: str, name: str, value: str) -> None:
        params = {"variable": name, "value": value}
        await self.request("POST", ari_path("channels", channel_id, "variable"), params=params)

    async def get_var(self, channel_id: str, name: str) -> str | None:
        """The variable's value; None when Asterisk answers 404 (unset, or the channel is gone)."""
        try:
            reply = await self.request("GET", ari_path("channels", channel_id, "variable"), params={"variable": name})
        except NotFound:
            return None
        return reply["value"]

    async def continue_in_dialplan(self, channel_id: str, *, context: str | None = None,
                                   extension: str | None = None, priority: int | None = None,
                                   label: str | None = None) -> None:
        params = {"context": context, "extension": extension, "priority": priority, "label": label}
        await self.request("POST", ari_path("channels", channel_id, "continue"), params=params)

    async def snoop(self, channel_id: str, snoop_id: str, *, spy: str = "both", whisper: str = "none",
                    app_args: str = "") -> dict:
        """A channel with our id that hears (and may speak into) `channel_id`; it enters our application."""
        params = {"app": self.app, "spy": spy, "whisper": whisper, "appArgs": app_args or None}
        return await self.request("POST", ari_path("channels", channel_id, "snoop", snoop_id), params=params,
                                  idempotent=True)

    async def record(self, channel_id: str, name: str, *, format: str = "wav", max_duration_s: int = 0,
                     max_silence_s: int = 0, beep: bool = False, terminate_on: str = "none",
                     if_exists: str = "overwrite") -> dict:
        params = recording_params(name, format, max_duration_s, max_silence_s, beep, terminate_on, if_exists)
        return await self.request("POST", ari_path("channels", channel_id, "record"), params=params)

    async def redirect(self, channel_id: str, endpoint: str) -> None:
        await self.request("POST", ari_path("channels", channel_id, "redirect"), params={"endpoint": endpoint})

    # --- bridges

    async def create_bridge(self, bridge_id: str, *, type: str = "mixing", name: str = "") -> dict:
        params = {"type": type, "name": name or None}
        return await self.request("POST", ari_path("bridges", bridge_id), params=params, idempotent=True)

    async def add_to_bridge(self, bridge_id: str, channel_ids: str | list[str]) -> None:
        params = {"channel": comma_joined(channel_ids)}
        await self.request("POST", ari_path("bridges", bridge_id, "addChannel"), params=params)

    async def remove_from_bridge(self, bridge_id: str, channel_ids: str | list[str]) -> None:
        params = {"channel": comma_joined(channel_ids)}
        await self.request("POST", ari_path("bridges", bridge_id, "removeChannel"), params=params)

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", ari_path("bridges", bridge_id))

    async def list_bridges(self) -> list[dict]:
        return await self.request("GET", "/bridges")

    async def record_bridge(self, bridge_id: str, name: str, *, format: str = "wav", max_duration_s: int = 0,
                            max_silence_s: int = 0, beep: bool = False, terminate_on: str = "none",
                            if_exists: str = "overwrite") -> dict:
        params = recording_params(name, format, max_duration_s, max_silence_s, beep, terminate_on, if_exists)
        return await self.request("POST", ari_path("bridges", bridge_id, "record"), params=params)

    # --- recordings

    async def live_recording(self, name: str) -> dict:
        return await self.request("GET", ari_path("recordings", "live", name))

    async def stop_recording(self, name: str) -> None:
        await self.request("POST", ari_path("recordings", "live", name, "stop"))

    async def stored_recording_file(self, name: str) -> bytes:
        return await self.request("GET", ari_path("recordings", "stored", name, "file"), raw=True)

    async def delete_stored_recording(self, name: str) -> None:
        await self.request("DELETE", ari_path("recordings", "stored", name))

    async def list_stored_recordings(self) -> list[dict]:
        return await self.request("GET", "/recordings/stored")

    # --- applications, asterisk, endpoints

    async def application(self) -> dict:
        return await self.request("GET", ari_path("applications", self.app))

    async def subscribe(self, event_source: str) -> dict:
        """Events of `event_source` ("channel:ID", "bridge:ID", ...) for our application too."""
        return await self.request("POST", ari_path("applications", self.app, "subscription"),
                                  params={"eventSource": event_source})

    async def info(self) -> dict:
        return await self.request("GET", "/asterisk/info")

    async def ping(self) -> dict:
        return await self.request("GET", "/asterisk/ping")

    async def list_endpoints(self) -> list[dict]:
        return await self.request("GET", "/endpoints")

    async def reload_module(self, name: str) -> None:
        await self.request("PUT", ari_path("asterisk", "modules", name))


def recording_params(name: str, format: str, max_duration_s: int, max_silence_s: int, beep: bool,
                     terminate_on: str, if_exists: str) -> dict:
    return {"name": name, "format": format, "maxDurationSeconds": max_duration_s,
            "maxSilenceSeconds": max_silence_s, "beep": beep, "terminateOn": terminate_on,
            "ifExists": if_exists}
