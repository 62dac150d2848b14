"""Asterisk's events for a call, as the call centre's inputs.

Each function takes the edge, the call's lane and one ARI event (a dict as Asterisk sends it).
A channel of the call is the caller's, an agent's phone, the customer on a callback, or the
snoop that records the call; what an event means depends on which.
"""
from __future__ import annotations

import logging

from runtime.ari import outbound
from runtime.ari.client import NotFound
from runtime.ari.lanes import Lane

log = logging.getLogger("flowdesk.ari")


async def handle(edge, lane: Lane, event: dict) -> None:
    handler = _HANDLERS.get(event.get("type"))
    if handler is not None:
        await handler(edge, lane, event)


async def stasis_start(edge, lane: Lane, event: dict) -> None:
    channel = event["channel"]
    if channel["id"] == lane.call_id and not lane.started:
        await _new_call(edge, lane, event)
    elif channel["id"] == lane.agent_leg:
        lane.agent_answered = True
        edge.center.agent_answers(lane.agent, edge.now())
    elif channel["id"] == lane.callback_leg:
        await outbound.connect(edge, lane, lane.callback_leg)
    elif channel["id"] == lane.snoop:
        await outbound.record_snoop(edge, lane)


async def _new_call(edge, lane: Lane, event: dict) -> None:
    channel, args = event["channel"], event.get("args") or []
    lane.started = True
    lane.caller = (channel.get("caller") or {}).get("number", "")
    lane.dialed = args[0] if args else (channel.get("dialplan") or {}).get("exten", "")
    edge.center.start_call(lane.call_id, caller=lane.caller, dialed=lane.dialed, at=edge.now())
    call = edge.center.calls.get(lane.call_id)
    lane.record = call.record if call is not None else None


async def dtmf(edge, lane: Lane, event: dict) -> None:
    if event["channel"]["id"] == lane.call_id and not lane.orphan:
        edge.center.press(lane.call_id, event["digit"], edge.now())


async def playback_finished(edge, lane: Lane, event: dict) -> None:
    playback = event["playback"]
    if playback["id"] not in lane.playbacks:
        return
    prompt_id = lane.playbacks.pop(playback["id"])
    if playback.get("state") == "failed":
        log.warning("call %s: could not play %s", lane.call_id, playback.get("media_uri"))
    if prompt_id is None:  # an announcement over the hold music is over
        await outbound.resume_hold(edge, lane)
    else:
        edge.center.prompt_finished(lane.call_id, prompt_id, edge.now())


async def channel_left(edge, lane: Lane, event: dict) -> None:
    """StasisEnd or ChannelDestroyed: the first of them counts."""
    channel_id = event["channel"]["id"]
    if channel_id in lane.ended_channels:
        return
    lane.ended_channels.add(channel_id)
    cause = event.get("cause_txt") or event.get("channel", {}).get("state", "")
    if channel_id == lane.call_id:
        await caller_left(edge, lane)
    elif channel_id == lane.agent_leg:
        await agent_left(edge, lane, cause)
    elif channel_id == lane.callback_leg:  # the customer on a callback hung up: the talk is over
        lane.callback_leg, lane.caller_gone = None, True
        edge.center.agent_hangs_up(lane.call_id, edge.now())
        await outbound.release_agent(edge, lane)
        await outbound.destroy_bridge(edge, lane)
    elif lane.orphan:
        await caller_left(edge, lane)


async def caller_left(edge, lane: Lane) -> None:
    lane.caller_gone = True
    lane.holding = lane.moh = False
    edge.center.caller_hangs_up(lane.call_id, edge.now())
    await outbound.release_agent(edge, lane)
    await outbound.destroy_bridge(edge, lane)


async def agent_left(edge, lane: Lane, cause: str) -> None:
    answered, agent = lane.agent_answered, lane.agent
    lane.agent_leg, lane.agent_answered = None, False
    if answered:
        await outbound.destroy_bridge(edge, lane)
        edge.center.agent_hangs_up(lane.call_id, edge.now())
        if lane.callback_leg:  # the agent ended a callback: the customer's line goes down too
            leg, lane.callback_leg = lane.callback_leg, None
            lane.ended_channels.add(leg)
            await outbound.hang_up_leg(edge, leg)
    elif agent is not None:
        edge.center.agent_declines(agent, edge.now(), cause or "no answer")


async def recording_finished(edge, lane: Lane, event: dict) -> None:
    name = event["recording"]["name"]
    kind = lane.recordings.pop(name, None)
    if kind is None:
        return
    failed = event["type"] == "RecordingFailed"
    if not failed:
        await outbound.save_recording(edge, lane, name, kind)
    if kind == "voicemail" and not lane.caller_gone:
        await outbound.hang_up(edge, lane)


async def resync(edge, lane: Lane, present: set[str]) -> None:
    """After the event socket came back: what happened while nobody was listening."""
    if lane.call_id not in present and not lane.caller_gone:
        await caller_left(edge, lane)
    if lane.agent_leg and lane.agent_leg not in present:
        lane.ended_channels.add(lane.agent_leg)
        await agent_left(edge, lane, "gone while the runtime was disconnected")
    for playback_id in list(lane.playbacks):
        try:
            await edge.client.get_playback(playback_id)
        except NotFound:
            await playback_finished(edge, lane, {"playback": {"id": playback_id, "state": "done"}})
    for name in list(lane.recordings):
        try:
            await edge.client.live_recording(name)
        except NotFound:  # it ended unseen; what was recorded is stored
            await recording_finished(edge, lane, {"type": "RecordingFinished", "recording": {"name": name}})


_HANDLERS = {
    "StasisStart": stasis_start,
    "ChannelDtmfReceived": dtmf,
    "PlaybackFinished": playback_finished,
    "StasisEnd": channel_left,
    "ChannelDestroyed": channel_left,
    "RecordingFinished": recording_finished,
    "RecordingFailed": recording_finished,
}
