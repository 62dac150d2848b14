"""The agent desktop on real calls: the studio's call centre served by Asterisk over ARI.

`start_ari(app, settings)` runs an `AriEdge` (runtime.ari) in the studio's event loop on the
studio's bundle: the flows' lookups read the studio's CRM (its RecordStore), calls are logged in
the studio's database, prompts are written to the media folder Asterisk reads, recordings land in
the recordings folder.  The edge tells the desktops what the call centre does at every flush, so
an agent's screen pops the moment the ACD rings their phone, before Asterisk has answered a word.

`AsteriskCallCenter` is the desktop's telephony (the same interface as the simulated
`LiveCallCenter`), with two differences an agent notices: a call is answered on the agent's own
phone (the desktop cannot lift a handset), and there is no simulated caller (real people dial).
Declining a ringing call or hanging up from the desktop hangs up the agent's phone over ARI, so
the call goes on exactly as if the agent had put the phone down.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from typing import Callable

from compiler import ir
from flowdesk.serve import ServeSettings
from runtime.ari.adapter import AriEdge, EdgeSettings
from runtime.ari.client import AriClient, AriError, AriUnavailable, NotFound
from runtime.ari.media import Media
from runtime.callcenter import CallCenter, Crm
from runtime.engine import EngineOptions
from runtime.storage import EventLog
from runtime.times import utcnow
from studio.telephony import NOT_READY_REASONS, WRAPUP_CODES, LiveCallCenter, TelephonyError

log = logging.getLogger("flowdesk.telephony")

CONNECT_WAIT_S = 5.0  # how long the studio's start waits for ARI's event socket before going on


class AsteriskCallCenter(LiveCallCenter):
    """The desktop's telephony on Asterisk: agents' states act on the edge's call centre; calls
    ring, are answered and end on the agents' real phones."""

    answers_on_desk = False    # the answer button cannot pick up a real phone: the desktop hides it

    def __init__(self, bundle: ir.Bundle, edge: AriEdge, *, event_log: EventLog | None = None,
                 clock: Callable[[], dt.datetime] = utcnow,
                 wrapup_codes: tuple[tuple[str, str], ...] = WRAPUP_CODES,
                 not_ready_reasons: tuple[tuple[str, str], ...] = NOT_READY_REASONS):
        super().__init__(bundle, crm=edge.center.crm, event_log=event_log, clock=clock, wrapup_codes=wrapup_codes,
                         not_ready_reasons=not_ready_reasons)
        self.edge = edge
        self.center = edge.center   # the simulated centre the base class made is never used
        self.log_writer = edge.log_writer
        self._hang_ups: set[asyncio.Task] = set()
        self._preparing: set[asyncio.Task] = set()
        edge.on_media = self._observe

    # ------------------------------------------------------------------ running

    async def start(self) -> None:
        """Check ARI, speak the fixed prompts, then serve calls and remind of callbacks until `stop()`.
        A wrong ARI user or password is a TelephonyError; an Asterisk that does not answer yet is
        connected to when it does."""
        self._wake = asyncio.Event()
        await asyncio.to_thread(self.load_callbacks)
        client = self.edge.client
        await client.open()
        try:
            await client.info()
        except AriUnavailable as error:
            log.warning("Asterisk at %s does not answer (%s); calls come once it does", client.url, error)
        except AriError as error:
            await client.close()
            raise TelephonyError(f"ARI at {client.url} refused us: {error}; check the ARI user and password") \
                from None
        await self.edge.media.prepare(self.bundle, self.center.options)
        self._tasks = [asyncio.create_task(self.edge.run()), asyncio.create_task(self._run_clock())]
        try:
            await self.edge.stream.wait_connected(CONNECT_WAIT_S)
        except asyncio.TimeoutError:
            log.warning("ARI's event socket at %s is not up yet; still trying", client.url)

    async def stop(self) -> None:
        await self.edge.close()     # writes the event log's last rows
        await super().stop()

    def step(self) -> None:
        """After an agent's action: hand the centre's requests to the calls (the desktops hear of
        them through the edge's flush), and remind of callbacks that fell due."""
        self._due_callbacks(self._now())
        self.edge.flush()
        if self._wake is not None:
            self._wake.set()

    def next_due(self) -> dt.datetime | None:
        """Only the callback reminders: the edge runs the centre's own timers."""
        return self.callbacks[0].at if self.callbacks else None

    def publish(self, bundle: ir.Bundle, crm: Crm | None = None) -> None:
        """As the simulated telephony's, and the new version's fixed prompts are spoken now, off
        the calls' way, so no caller of the new flows waits for the synthesizer."""
        super().publish(bundle, crm)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return      # not serving (a test): prompts are spoken when a call needs them
        task = loop.create_task(self._prepare(bundle))
        self._preparing.add(task)
        task.add_done_callback(self._preparing.discard)

    async def _prepare(self, bundle: ir.Bundle) -> None:
        try:
            await self.edge.media.prepare(bundle, self.center.options)
        except Exception:
            log.exception("could not speak the new version's prompts ahead; they are spoken when a call needs them")

    def _observe(self, medias: list) -> None:
        self.hub.observe(self.center, medias)

    # ------------------------------------------------------------------ the phone

    def place_call(self, caller: str, dialed: str | None = None, *, keys: str = "", flow: str | None = None) -> str:
        raise TelephonyError("calls come from real phones on Asterisk: dial one of the project's numbers")

    def caller_hangs_up(self, call_id: str) -> None:
        raise TelephonyError("the caller hangs up on their own phone")

    def answer(self, agent: str) -> str:
        phone = self.bundle.agents[self._known(agent)].extension or agent
        raise TelephonyError(f"answer on your phone ({phone}): the desktop cannot pick it up")

    def decline(self, agent: str) -> None:
        """Hang up the agent's ringing phone: the ACD moves on as after any refused ring."""
        if self.center.ringing.get(self._known(agent)) is None:
            raise TelephonyError("no call is ringing for you")
        self._hang_up_phone(agent)

    def hangup(self, agent: str) -> str:
        """Hang up the agent's phone on the call they are on; after-call work follows."""
        desk = self.hub.desk(self._known(agent))
        if desk.call is None or not desk.connected:
            raise TelephonyError("you are not on a call")
        self._hang_up_phone(agent)
        return desk.call.call_id

    def _hang_up_phone(self, agent: str) -> None:
        leg = next((lane.agent_leg for lane in self.edge.lanes.values()
                    if lane.agent == agent and lane.agent_leg), None)
        if leg is None:
            raise TelephonyError("your phone is not on this call yet; try again in a moment")

        async def hang_up() -> None:  # the phone's ChannelDestroyed then moves the call on
            try:
                await self.edge.client.hangup(leg)
            except NotFound:
                pass
            except AriError as error:
                log.warning("could not hang up %s's phone %s: %s", agent, leg, error)
        task = asyncio.get_running_loop().create_task(hang_up())
        self._hang_ups.add(task)
        task.add_done_callback(self._hang_ups.discard)


def asterisk_call_center(bundle: ir.Bundle, settings: ServeSettings, *, crm: Crm, database_url: str,
                         project, clock: Callable[[], dt.datetime] = utcnow) -> AsteriskCallCenter:
    """The edge on `settings` (as `flowdesk serve` reads them) for the bundle, with the CRM and
    the event log given; agents log in from their desktops."""
    center = CallCenter(bundle, epoch=clock(), crm=crm, options=EngineOptions(secrets=os.environ.get))
    edge = AriEdge(AriClient(settings.ari, settings.user, settings.password, settings.app), center,
                   Media(settings.media_dir, settings.media_dir_in_asterisk, project_dir=project),
                   EdgeSettings(agent_dial=settings.agent_dial, outbound_dial=settings.outbound_dial,
                                recordings_dir=settings.recordings),
                   event_log=EventLog(database_url), now=clock)
    return AsteriskCallCenter(bundle, edge, event_log=edge.event_log, clock=clock)


async def start_ari(app, settings: ServeSettings) -> AsteriskCallCenter:
    """`create_app(on_startup=[...])`: real calls for the studio's desktops, on the studio's
    bundle, CRM, database and clock; kept on `app.state.telephony`."""
    studio = app.state.studio
    live = asterisk_call_center(studio.bundle, settings, crm=studio.store, project=studio.project, clock=studio.clock,
                                database_url=studio.engine.url.render_as_string(hide_password=False))
    await live.start()
    app.state.telephony = live
    return live
