"""One lane per call: its channels, what is playing on it, and its inbox.

Everything that happens to a call goes through its lane's inbox in order (Asterisk's events, the
call centre's requests for it, replies from outside systems), and one task works the inbox, so
the order of a call's events is kept while calls run side by side.  The ids of the channels,
playbacks, bridges and recordings a call owns are chosen by the runtime, so an event is routed
to its lane before Asterisk has said anything about it.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

SAVED_STATE = "FLOWDESK_CALL"  # the channel variable that keeps a waiting call's state for a restart


@dataclass
class Lane:
    call_id: str                      # the caller's channel id in Asterisk
    caller: str = ""
    dialed: str = ""
    inbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    task: asyncio.Task | None = None
    record: Any = None                # the call's row in the event log (runtime.storage.Call)
    voicemail: Any = None             # the message being left (runtime.storage.Voicemail)
    started: bool = False             # the call centre knows the call
    caller_gone: bool = False         # the caller's channel left the application
    agent: str | None = None          # the agent being rung or connected
    agent_leg: str | None = None      # that agent's channel
    agent_answered: bool = False
    legs: int = 0                     # agent channels made so far (each gets a new id)
    callback_leg: str | None = None   # the customer's channel on a callback
    bridge: str | None = None
    holding: bool = False             # waiting in a queue, with music
    moh: bool = False
    playbacks: dict[str, str | None] = field(default_factory=dict)  # playback id -> prompt id (None: announcement)
    recordings: dict[str, str] = field(default_factory=dict)        # live recording name -> "call" / "voicemail"
    snoop: str | None = None
    ended_channels: set[str] = field(default_factory=set)
    orphan: bool = False              # a conversation found after a restart, left to finish

    def put(self, kind: str, item: Any = None) -> None:
        self.inbox.put_nowait((kind, item))

    @staticmethod
    def leg_of(channel_id: str) -> tuple[str, str] | None:
        """(call id, "snoop" / "agent" / "callback") for a channel the runtime made for a call."""
        for role in ("snoop", "callback"):
            if channel_id.endswith(f"-{role}"):
                return channel_id[: -len(role) - 1], role
        head, sep, number = channel_id.rpartition("-agent-")
        return (head, "agent") if sep and number.isdigit() else None

    def new_agent_leg(self) -> str:
        self.legs += 1
        return f"{self.call_id}-agent-{self.legs}"

    def playback_id(self, prompt_id: str) -> str:
        return f"{self.call_id}-{prompt_id}"

    @property
    def idle(self) -> bool:
        """Nothing left to do: the caller is gone and no recording is still being saved."""
        return self.caller_gone and not self.recordings and self.agent_leg is None and self.inbox.empty()
