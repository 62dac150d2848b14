"""The call centre's requests for a call, as ARI requests.

`perform` takes one item of the centre's outbox (an engine command such as Say or Hangup, or an
ACD action such as RingAgent or Bridge) and carries it out.  A request about a channel that is
already gone (404) is no fault: the caller hung up meanwhile, and that event is on its way.
A prompt that cannot be played counts as played, so the flow goes on instead of waiting.
"""
from __future__ import annotations

import asyncio
import logging
import math

from runtime import acd_actions as a
from runtime import commands as c
from runtime.ari.client import AriError, BadRequest, NotFound, Unprocessable
from runtime.ari.lanes import SAVED_STATE, Lane
from runtime.ari.media import music_class
from runtime.events import TransferFailed

log = logging.getLogger("flowdesk.ari")


async def perform(edge, lane: Lane, command) -> None:
    handler = _ACTIONS.get(type(command))
    if handler is None or lane.orphan:
        return
    caller_side = not isinstance(command, (a.StopRinging, a.RingAgent, a.CallBack))
    if caller_side and lane.caller_gone:
        return
    try:
        await handler(edge, lane, command)
    except NotFound:
        log.info("call %s: %s found its channel gone", lane.call_id, type(command).__name__)


async def answer(edge, lane: Lane, command: c.Answer) -> None:
    await edge.client.answer(lane.call_id)


async def say(edge, lane: Lane, command: c.Say) -> None:
    await leave_hold(edge, lane, keep_holding=True)
    try:
        uri = await edge.media.say(command.text)
    except Exception as error:  # no synthesizer: the caller hears nothing, the flow goes on
        log.error("call %s: cannot speak %r: %s", lane.call_id, command.text[:40], error)
        return edge.center.prompt_finished(lane.call_id, command.prompt_id, edge.now())
    await _play(edge, lane, uri, command.prompt_id)


async def play(edge, lane: Lane, command: c.Play) -> None:
    await leave_hold(edge, lane, keep_holding=True)
    await _play(edge, lane, edge.media.play(command.sound), command.prompt_id)


async def _play(edge, lane: Lane, uri: str, prompt_id: str | None) -> None:
    playback_id = lane.playback_id(prompt_id or f"announce-{len(lane.playbacks)}-{id(uri)}")
    edge.own(playback_id, lane.call_id)
    lane.playbacks[playback_id] = prompt_id
    try:
        await edge.client.play(lane.call_id, playback_id, uri)
    except NotFound:
        raise
    except AriError as error:
        log.error("call %s: cannot play %s: %s", lane.call_id, uri, error)
        lane.playbacks.pop(playback_id, None)
        if prompt_id is not None:
            edge.center.prompt_finished(lane.call_id, prompt_id, edge.now())


async def stop_prompt(edge, lane: Lane, command: c.StopPrompt) -> None:
    playback_id = lane.playback_id(command.prompt_id)
    lane.playbacks.pop(playback_id, None)  # its PlaybackFinished is no longer news
    try:
        await edge.client.stop_playback(playback_id)
    except NotFound:
        pass


async def silence(edge, lane: Lane) -> None:
    """Stop whatever plays on the call: Asterisk runs a `continue` only after the playback before it."""
    for playback_id in list(lane.playbacks):
        lane.playbacks.pop(playback_id, None)
        try:
            await edge.client.stop_playback(playback_id)
        except NotFound:
            pass


async def hang_up(edge, lane: Lane, command: c.Hangup | None = None) -> None:
    await leave_hold(edge, lane)
    await edge.client.hangup(lane.call_id)


async def transfer(edge, lane: Lane, command: c.TransferToNumber) -> None:
    await leave_hold(edge, lane)
    await silence(edge, lane)
    try:
        await edge.client.continue_in_dialplan(lane.call_id, context=edge.settings.transfer_context,
                                               extension=command.number, priority=1)
    except NotFound:
        raise
    except AriError as error:
        edge.center.deliver(lane.call_id, TransferFailed(at=edge.now(), reason=str(error)))


async def start_recording(edge, lane: Lane, command: c.StartRecording) -> None:
    """The whole call, both directions: a snoop channel on the caller, recorded once it is up."""
    if lane.snoop is None:
        lane.snoop = f"{lane.call_id}-snoop"
        edge.own(lane.snoop, lane.call_id)
        await edge.client.snoop(lane.call_id, lane.snoop, spy="both", app_args="snoop")


async def record_snoop(edge, lane: Lane) -> None:
    name = f"call-{lane.call_id}"
    edge.own(name, lane.call_id)
    await edge.client.record(lane.snoop, name, format="wav")
    lane.recordings[name] = "call"


async def voicemail(edge, lane: Lane, command: c.Voicemail) -> None:
    await leave_hold(edge, lane)
    name = f"voicemail-{lane.call_id}"
    call = edge.center.calls.get(lane.call_id)
    lane.voicemail = call.voicemail if call is not None else None
    edge.own(name, lane.call_id)
    await edge.client.record(lane.call_id, name, format="wav", beep=True, terminate_on="#",
                             max_duration_s=edge.settings.voicemail_max_s, max_silence_s=10)
    lane.recordings[name] = "voicemail"


async def save_recording(edge, lane: Lane, name: str, kind: str = "call") -> None:
    """Fetch a finished recording over ARI (Asterisk may be on another host) and list it on the call
    (the whole call's recording) or on the message (a voicemail)."""
    try:
        audio = await edge.client.stored_recording_file(name)
    except AriError as error:
        log.error("call %s: recording %s could not be fetched: %s", lane.call_id, name, error)
        return
    target = edge.settings.recordings_dir / f"{name}.wav"
    await asyncio.to_thread(_write_file, target, audio)
    row = lane.voicemail if kind == "voicemail" else lane.record
    if row is not None:
        row.recording = str(target)
        edge.center.rows.append(row)


def _write_file(target, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(data)
    partial.replace(target)


# ------------------------------------------------------------------ queues and agents

async def hold(edge, lane: Lane, action: a.CallQueued) -> None:
    """The call waits in a queue: music, and its state kept on the channel for a restart."""
    lane.holding = True
    await resume_hold(edge, lane, action.queue)
    await edge.save_state(lane, action.queue, action.priority)


async def resume_hold(edge, lane: Lane, queue: str | None = None) -> None:
    if not lane.holding or lane.moh or lane.caller_gone:
        return
    call = edge.center.calls.get(lane.call_id)
    queue = queue or (call.state.queue if call else None)
    music = edge.center.bundle.queues[queue].music if queue in edge.center.bundle.queues else "default"
    try:
        await edge.client.start_moh(lane.call_id, music_class(music))
    except NotFound:  # the caller left as the announcement ended: their StasisEnd is on its way
        return
    lane.moh = True


async def leave_hold(edge, lane: Lane, keep_holding: bool = False) -> None:
    lane.holding = lane.holding and keep_holding
    if lane.moh:
        lane.moh = False
        try:
            await edge.client.stop_moh(lane.call_id)
        except NotFound:
            pass


async def announce(edge, lane: Lane, action: a.Announce) -> None:
    text = edge.media.announcement(action.position, action.expected_wait_s)
    await leave_hold(edge, lane, keep_holding=True)
    await _play(edge, lane, await edge.media.say(text), None)


async def ring_agent(edge, lane: Lane, action: a.RingAgent) -> None:
    agent = edge.center.bundle.agents.get(action.agent)
    leg = lane.new_agent_leg()
    lane.agent, lane.agent_leg, lane.agent_answered = action.agent, leg, False
    edge.own(leg, lane.call_id)
    endpoint = edge.settings.agent_dial.format(agent=action.agent, extension=(agent.extension if agent else None)
                                               or action.agent)
    try:
        await edge.client.originate(leg, endpoint, app_args=f"agent,{action.agent}", caller_id=lane.caller or None,
                                    timeout_s=math.ceil(action.timeout_ms / 1000) + 5)
    except AriError as error:  # no such phone, or Asterisk refused: as if the agent did not answer
        log.warning("call %s: cannot ring %s at %s: %s", lane.call_id, action.agent, endpoint, error)
        lane.agent_leg = None
        edge.center.agent_declines(action.agent, edge.now(), str(error))


async def stop_ringing(edge, lane: Lane, action: a.StopRinging) -> None:
    if lane.agent == action.agent and not lane.agent_answered:
        await release_agent(edge, lane)


async def release_agent(edge, lane: Lane) -> None:
    """Hang up the agent's phone (ringing or connected); its ChannelDestroyed ends the leg."""
    if lane.agent_leg is not None and not await hang_up_leg(edge, lane.agent_leg):
        lane.agent_leg = None


async def hang_up_leg(edge, channel_id: str) -> bool:
    """Hang up a channel the runtime made for a call; False when it was already gone."""
    try:
        await edge.client.hangup(channel_id)
    except NotFound:
        return False
    return True


async def bridge(edge, lane: Lane, action: a.Bridge) -> None:
    if lane.agent_leg is None:
        return
    await leave_hold(edge, lane)
    await edge.client.set_var(lane.call_id, SAVED_STATE, "")  # no longer waiting: nothing to adopt
    await connect(edge, lane, lane.agent_leg)


async def connect(edge, lane: Lane, other: str) -> None:
    """Put the call's two parties in one mixing bridge (caller or callback customer with the agent)."""
    parties = [lane.callback_leg or lane.call_id, lane.agent_leg]
    if None in parties:
        return
    if lane.bridge is None:
        lane.bridge = f"{lane.call_id}-bridge"
        edge.own(lane.bridge, lane.call_id)
        await edge.client.create_bridge(lane.bridge, type="mixing", name=f"call {lane.call_id}")
    for party in parties:
        await _add_to_bridge(edge, lane.bridge, party)


async def _add_to_bridge(edge, bridge_id: str, channel_id: str, tries: int = 5) -> None:
    """A channel that just entered the application may not be ready for a bridge for a few
    milliseconds (Asterisk answers 422 "Channel not in Stasis application"): try again shortly.
    A channel that left meanwhile (its hangup event is on the way) is no fault: NotFound."""
    for attempt in range(tries):
        try:
            return await edge.client.add_to_bridge(bridge_id, channel_id)
        except (BadRequest, Unprocessable) as error:
            if not await _in_application(edge, channel_id):
                raise NotFound(error.method, error.path, 404, f"{channel_id} left the application") from error
            if attempt == tries - 1:
                raise
            log.info("bridge %s: %s not ready yet", bridge_id, channel_id)
            await asyncio.sleep(0.05 * (attempt + 1))


async def _in_application(edge, channel_id: str) -> bool:
    try:
        channel = await edge.client.get_channel(channel_id)
    except NotFound:
        return False
    return (channel.get("dialplan") or {}).get("app_name") == "Stasis"


async def destroy_bridge(edge, lane: Lane) -> None:
    if lane.bridge is None:
        return
    bridge_id, lane.bridge = lane.bridge, None
    try:
        await edge.client.destroy_bridge(bridge_id)
    except NotFound:
        pass


async def call_back(edge, lane: Lane, action: a.CallBack) -> None:
    """The agent took a callback task: dial the customer; when they answer, connect them."""
    lane.callback_leg = f"{lane.call_id}-callback"
    edge.own(lane.callback_leg, lane.call_id)
    number = lane.caller or edge.numbers.get(lane.call_id, "")
    endpoint = edge.settings.outbound_dial.format(number=number)
    try:
        await edge.client.originate(lane.callback_leg, endpoint, app_args="callback", timeout_s=30)
    except AriError as error:
        log.warning("call %s: cannot call back %s: %s", lane.call_id, number, error)
        lane.callback_leg = None
        await release_agent(edge, lane)


_ACTIONS = {
    c.Answer: answer, c.Say: say, c.Play: play, c.StopPrompt: stop_prompt, c.Hangup: hang_up,
    c.TransferToNumber: transfer, c.StartRecording: start_recording, c.Voicemail: voicemail,
    a.CallQueued: hold, a.Announce: announce, a.RingAgent: ring_agent, a.StopRinging: stop_ringing,
    a.Bridge: bridge, a.CallBack: call_back,
}
