"""The ACD's behaviour, one rule per test, on small queues and agents built by hand.

Times are milliseconds; `S` is one second.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from compiler import compile_project, ir
from runtime.acd import Acd
from runtime.acd_actions import (AgentStateChanged, Announce, Bridge, CallAbandoned, CallAnswered, CallBack,
                                 CallbackScheduled, CallEnded, CallQueued, Ignored, Overflow, RingAgent,
                                 StopRinging)

S = 1000


def queue(name="general", **kw) -> ir.Queue:
    return ir.Queue(name=name, **{"strategy": "longest_idle", **kw})


def agent(name, queues=("general",), **skills) -> ir.Agent:
    return ir.Agent(name=name, queues=list(queues), skills=skills)


def acd_with(queues, agents, logged_in=True) -> Acd:
    acd = Acd({q.name: q for q in queues}, {a.name: a for a in agents})
    if logged_in:
        for i, a in enumerate(agents):
            acd.login(i, a.name)
    return acd


def of(kind, actions):
    return [a for a in actions if isinstance(a, kind)]


def rung(actions) -> list[tuple[str, str]]:
    return [(a.call_id, a.agent) for a in of(RingAgent, actions)]


def serve(acd: Acd, now: int, call_id: str, talk_ms: int = 0) -> list:
    """Answer the ringing call and end the conversation after `talk_ms`."""
    return acd.answer(now, call_id) + acd.hangup(now + talk_ms, call_id)


# ------------------------------------------------------------------ strategies

def test_longest_idle_offers_the_agent_free_the_longest():
    acd = acd_with([queue()], [agent("a"), agent("b"), agent("c")])  # ready at 0, 1, 2 ms
    assert rung(acd.enqueue(10, "c1", "general")) == [("c1", "a")]
    serve(acd, 11, "c1", talk_ms=5)  # a is ready again at 16: now the least idle
    assert rung(acd.enqueue(20, "c2", "general")) == [("c2", "b")]
    assert rung(acd.enqueue(21, "c3", "general")) == [("c3", "c")]
    assert rung(acd.enqueue(22, "c4", "general")) == [("c4", "a")]


def test_fewest_calls_offers_the_agent_with_fewest_answers_until_a_new_day():
    acd = acd_with([queue(strategy="fewest_calls")], [agent("a"), agent("b")])
    for i in range(2):
        acd.enqueue(10 + i, f"x{i}", "general")
        serve(acd, 10 + i, f"x{i}")
    acd.enqueue(20, "y", "general")
    serve(acd, 20, "y")
    # a answered x0 and y, b answered x1: b is offered next although a is idle longer
    assert acd.agent_call("a") is None and acd.agent_call("b") is None
    assert rung(acd.enqueue(30, "z", "general")) == [("z", "b")]
    serve(acd, 30, "z")
    acd.new_day(40)
    assert rung(acd.enqueue(50, "w", "general")) == [("w", "a")]  # counts are equal: longest idle wins


def test_round_robin_turns_through_the_members_in_declaration_order():
    acd = acd_with([queue(strategy="round_robin")], [agent("a"), agent("b"), agent("c")])
    order = []
    for i in range(5):
        order += [agent for _, agent in rung(acd.enqueue(10 + i, f"c{i}", "general"))]
        serve(acd, 10 + i, f"c{i}")
    assert order == ["a", "b", "c", "a", "b"]


def test_round_robin_skips_agents_who_are_not_ready():
    acd = acd_with([queue(strategy="round_robin")], [agent("a"), agent("b"), agent("c")])
    acd.set_not_ready(5, "b", "lunch")
    order = []
    for i in range(3):
        order += [agent for _, agent in rung(acd.enqueue(10 + i, f"c{i}", "general"))]
        serve(acd, 10 + i, f"c{i}")
    assert order == ["a", "c", "a"]


def test_skills_needs_every_skill_then_prefers_the_best_total_then_longest_idle():
    vip = queue("vip", strategy="skills", skills=[ir.SkillNeed(skill="vip", min_level=2),
                                                  ir.SkillNeed(skill="billing", min_level=1)])
    agents = [agent("novice", ["vip"], vip=1, billing=5),   # below the vip minimum: never offered
              agent("good", ["vip"], vip=3, billing=1),
              agent("best", ["vip"], vip=4, billing=2, chinese=5),  # chinese is not needed: does not count
              agent("also_good", ["vip"], vip=2, billing=2)]
    acd = acd_with([vip], agents)
    assert acd.serves("novice") == ()
    assert rung(acd.enqueue(10, "c1", "vip")) == [("c1", "best")]
    assert rung(acd.enqueue(11, "c2", "vip")) == [("c2", "good")]  # total 4 like also_good, idle longer
    assert rung(acd.enqueue(12, "c3", "vip")) == [("c3", "also_good")]
    assert rung(acd.enqueue(13, "c4", "vip")) == []
    assert acd.waiting("vip") == ["c4"] and acd.agent_state("novice") == ("ready", None)


def test_login_may_override_queues_and_skills():
    vip = queue("vip", strategy="skills", skills=[ir.SkillNeed(skill="vip", min_level=3)])
    acd = acd_with([queue(), vip], [agent("a", ["general"])], logged_in=False)
    acd.login(0, "a", queues=["vip"], skills={"vip": 3})
    assert acd.serves("a") == ("vip",)
    assert rung(acd.enqueue(1, "g", "general")) == []
    assert rung(acd.enqueue(2, "v", "vip")) == [("v", "a")]


# ------------------------------------------------------------------ preferred agent

def test_a_preferred_agent_who_is_busy_is_waited_for_and_then_gets_the_call():
    acd = acd_with([queue()], [agent("manager"), agent("other")])
    acd.enqueue(10, "first", "general", preferred="manager")
    acd.answer(11, "first")
    out = acd.enqueue(20, "vip", "general", preferred="manager", prefer_for_ms=30 * S)
    assert rung(out) == [] and acd.waiting_for("manager") == ["vip"]
    assert acd.agent_state("other") == ("ready", None)  # not offered: the call waits for its manager
    out = acd.hangup(25 * S, "first")
    assert rung(out) == [("vip", "manager")]


def test_a_preferred_call_falls_back_to_the_queue_when_the_window_ends():
    acd = acd_with([queue()], [agent("manager"), agent("other")])
    acd.set_not_ready(5, "other", "meeting")
    acd.set_not_ready(5, "manager", "meeting")
    acd.enqueue(10, "early", "general")
    acd.enqueue(20, "vip", "general", preferred="manager", prefer_for_ms=30 * S)
    assert acd.waiting("general") == ["early"]
    assert acd.next_deadline() == 20 + 30 * S
    acd.advance(20 + 30 * S)
    assert acd.waiting("general") == ["early", "vip"]  # joins at its place, behind the older call
    assert rung(acd.set_ready(40 * S, "other")) == [("early", "other")]


def test_a_preferred_agent_who_is_logged_out_or_does_not_answer_is_passed_over():
    acd = acd_with([queue()], [agent("manager"), agent("other")])
    acd.logout(5, "manager")
    assert rung(acd.enqueue(10, "c1", "general", preferred="manager", prefer_for_ms=30 * S)) == [("c1", "other")]
    acd.answer(11, "c1")
    acd.login(12, "manager")
    assert rung(acd.enqueue(20, "c2", "general", preferred="manager", prefer_for_ms=30 * S)) == [("c2", "manager")]
    out = acd.advance(20 + 15 * S)  # the manager lets it ring
    assert of(StopRinging, out) == [StopRinging("c2", "manager")]
    assert acd.agent_state("manager") == ("not_ready", "no answer")
    assert acd.waiting("general") == ["c2"]  # back in the pool without waiting out the window


def test_a_preferred_agent_need_not_be_a_member_of_the_queue():
    acd = acd_with([queue(), queue("vip")], [agent("manager", ["vip"]), agent("other")])
    assert rung(acd.enqueue(10, "c1", "general", preferred="manager")) == [("c1", "manager")]


def test_a_preferred_agent_logging_out_releases_the_calls_waiting_for_them():
    acd = acd_with([queue()], [agent("manager"), agent("other")])
    acd.set_not_ready(1, "manager", "lunch")
    acd.set_not_ready(1, "other", "lunch")
    acd.enqueue(10, "vip", "general", preferred="manager", prefer_for_ms=60 * S)
    acd.set_ready(20, "other")
    assert acd.agent_state("other") == ("ready", None)
    assert rung(acd.logout(30, "manager")) == [("vip", "other")]


# ------------------------------------------------------------------ order in line

def test_higher_priority_first_then_the_earlier_call():
    acd = acd_with([queue()], [agent("a")])
    acd.set_not_ready(1, "a", "brief")
    acd.enqueue(10, "old", "general")
    acd.enqueue(20, "vip", "general", priority=5)
    acd.enqueue(30, "new", "general")
    acd.enqueue(40, "vip2", "general", priority=5)
    assert acd.waiting("general") == ["vip", "vip2", "old", "new"]
    assert [acd.position(c) for c in ("vip", "vip2", "old", "new")] == [1, 2, 3, 4]


def test_a_call_whose_ring_goes_unanswered_keeps_its_place_and_the_agent_turns_not_ready():
    acd = acd_with([queue(ring_timeout_ms=10 * S)], [agent("a"), agent("b")])
    acd.set_not_ready(1, "b", "brief")
    acd.enqueue(10, "first", "general")    # rings a
    acd.enqueue(20, "second", "general")
    out = acd.advance(10 + 10 * S)
    assert of(StopRinging, out) == [StopRinging("first", "a")]
    assert AgentStateChanged("a", "not_ready", "no answer", 10 + 10 * S) in out
    assert acd.waiting("general") == ["first", "second"]
    assert rung(acd.set_ready(11 * S, "b")) == [("first", "b")]


def test_an_agent_takes_the_best_call_of_their_queues_queue_priority_first():
    queues = [queue("plain"), queue("vip", priority=10), queue("other")]
    acd = acd_with(queues, [agent("a", ["plain", "vip", "other"])])
    acd.set_not_ready(1, "a", "brief")
    acd.enqueue(10, "p_urgent", "plain", priority=9)
    acd.enqueue(20, "v", "vip")
    acd.enqueue(5 * S, "o_old", "other")
    acd.enqueue(6 * S, "o_urgent", "other", priority=9)
    taken = []
    for i in range(4):
        now = (10 + i) * S
        out = acd.set_ready(now, "a")
        taken += [c for c, _ in rung(out)]
        serve(acd, now, taken[-1])
        acd.set_not_ready(now, "a", "brief")
    # vip by queue priority; then call priority 9, the earlier of the two first; then the rest
    assert taken == ["v", "p_urgent", "o_urgent", "o_old"]


# ------------------------------------------------------------------ hang-ups

def test_a_caller_hanging_up_while_waiting_is_an_abandon_with_its_wait():
    acd = acd_with([queue()], [agent("a")])
    acd.set_not_ready(1, "a", "brief")
    acd.enqueue(10, "c", "general")
    out = acd.hangup(10 + 42 * S, "c")
    assert out == [CallAbandoned("c", "general", 42 * S, 10 + 42 * S)]
    assert acd.waiting("general") == [] and acd.call_state("c") is None
    assert of(Ignored, acd.hangup(50 * S, "c")) != []  # a second hang-up changes nothing
    assert rung(acd.set_ready(60 * S, "a")) == []


def test_a_caller_hanging_up_while_ringing_frees_the_agent_who_keeps_their_turn():
    acd = acd_with([queue()], [agent("a"), agent("b")])
    acd.enqueue(10, "c1", "general")  # rings a, the longest idle
    out = acd.hangup(2 * S, "c1")
    assert out[:2] == [StopRinging("c1", "a"), CallAbandoned("c1", "general", 2 * S - 10, 2 * S)]
    assert acd.agent_state("a") == ("ready", None)
    assert rung(acd.enqueue(3 * S, "c2", "general")) == [("c2", "a")]  # still idle longest


def test_a_freed_agent_is_offered_the_next_waiting_call_at_once():
    acd = acd_with([queue()], [agent("a")])
    acd.enqueue(10, "c1", "general")
    acd.enqueue(20, "c2", "general")
    out = acd.hangup(30, "c1")
    assert rung(out) == [("c2", "a")]


# ------------------------------------------------------------------ after-call work and states

def test_wrap_up_lasts_the_queues_wrapup_time_then_the_agent_is_ready_again():
    acd = acd_with([queue(wrapup_ms=30 * S)], [agent("a")])
    acd.enqueue(10, "c1", "general")
    acd.answer(1 * S, "c1")
    out = acd.hangup(61 * S, "c1")
    assert out == [CallEnded("c1", "general", "a", 60 * S, 61 * S),
                   AgentStateChanged("a", "wrap_up", None, 61 * S)]
    assert rung(acd.enqueue(62 * S, "c2", "general")) == []  # no offer during wrap-up
    assert acd.next_deadline() == 91 * S
    out = acd.advance(100 * S)
    assert out[0] == AgentStateChanged("a", "ready", None, 91 * S)  # at the deadline, not at 100 s
    assert rung(out) == [("c2", "a")]


def test_set_ready_ends_wrap_up_early():
    acd = acd_with([queue(wrapup_ms=30 * S)], [agent("a")])
    acd.enqueue(10, "c1", "general")
    serve(acd, 10, "c1", talk_ms=5 * S)
    acd.enqueue(6 * S, "c2", "general")
    assert rung(acd.set_ready(7 * S, "a")) == [("c2", "a")]
    assert acd.next_deadline() == 7 * S + 15 * S  # the ring timeout; the wrap-up deadline is gone


def test_not_ready_asked_for_during_a_call_applies_after_its_wrap_up():
    acd = acd_with([queue(wrapup_ms=10 * S)], [agent("a")])
    acd.enqueue(10, "c1", "general")
    acd.answer(20, "c1")
    assert acd.set_not_ready(30, "a", "lunch") == []
    assert acd.agent_state("a") == ("on_call", None)
    acd.hangup(5 * S, "c1")
    acd.enqueue(6 * S, "c2", "general")
    out = acd.advance(15 * S)
    assert out == [AgentStateChanged("a", "not_ready", "lunch", 15 * S)]
    assert acd.waiting("general") == ["c2"]


def test_agents_not_ready_on_call_or_in_wrap_up_are_never_offered():
    acd = acd_with([queue(wrapup_ms=60 * S)], [agent("idle"), agent("busy"), agent("wrapping"), agent("away")])
    acd.set_not_ready(1, "idle", "x")  # keep idle out of the way while the others get their calls
    acd.enqueue(10, "c1", "general")   # busy (idle longest of the ready ones)
    acd.answer(11, "c1")
    acd.enqueue(12, "c2", "general")   # wrapping
    serve(acd, 13, "c2")
    acd.set_not_ready(14, "away", "training")
    acd.set_not_ready(15, "idle", "x")
    assert [acd.agent_state(a)[0] for a in ("busy", "wrapping", "away", "idle")] == \
        ["on_call", "wrap_up", "not_ready", "not_ready"]
    assert rung(acd.enqueue(20, "c3", "general")) == []
    assert rung(acd.set_ready(30, "idle")) == [("c3", "idle")]


def test_the_agent_ending_the_talk_starts_wrap_up_but_never_counts_an_abandon():
    acd = acd_with([queue(wrapup_ms=10 * S)], [agent("a")])
    acd.enqueue(10, "c1", "general")
    assert acd.end_talk(20, "c1") == [Ignored("c1", "the call is not connected")]
    assert acd.call_state("c1") == ("ringing", "a")
    acd.answer(30, "c1")
    out = acd.end_talk(40, "c1")
    assert out == [CallEnded("c1", "general", "a", 10, 40), AgentStateChanged("a", "wrap_up", None, 40)]
    assert acd.hangup(50, "c1") == [Ignored("c1", "the ACD does not hold this call")]


def test_declining_a_ring_returns_the_call_and_sets_the_reason():
    acd = acd_with([queue()], [agent("a"), agent("b")])
    acd.enqueue(10, "c1", "general")
    out = acd.decline(20, "c1", "busy")
    assert of(StopRinging, out) == [StopRinging("c1", "a")]
    assert acd.agent_state("a") == ("not_ready", "busy")
    assert rung(out) == [("c1", "b")]


def test_not_ready_while_ringing_declines_the_call():
    acd = acd_with([queue()], [agent("a")])
    acd.enqueue(10, "c1", "general")
    acd.set_not_ready(20, "a", "toilet")
    assert acd.agent_state("a") == ("not_ready", "toilet")
    assert acd.waiting("general") == ["c1"]


def test_logout_while_ringing_requeues_and_during_a_call_is_refused():
    acd = acd_with([queue()], [agent("a"), agent("b")])
    acd.enqueue(10, "c1", "general")   # a
    out = acd.logout(20, "a")
    assert rung(out) == [("c1", "b")] and acd.agent_state("a") == ("logged_out", None)
    acd.answer(30, "c1")
    assert of(Ignored, acd.logout(40, "b")) == [Ignored("b", "on a call: log out after it ends")]
    assert acd.agent_state("b") == ("on_call", None)


# ------------------------------------------------------------------ max wait and overflow

def test_max_wait_then_voicemail_or_hangup_ends_the_call_in_the_acd():
    for kind, target in (("voicemail", "support"), ("hangup", None)):
        acd = acd_with([queue(max_wait_ms=60 * S, overflow=ir.Overflow(kind=kind, target=target))], [agent("a")])
        acd.set_not_ready(1, "a", "x")
        acd.enqueue(10, "c", "general")
        out = acd.advance(100 * S)
        assert out == [Overflow("c", "general", kind, target, 60 * S, 10 + 60 * S)]
        assert acd.call_state("c") is None and acd.next_deadline() is None


def test_overflow_to_another_queue_keeps_the_original_enqueue_time():
    first = queue("first", max_wait_ms=60 * S, overflow=ir.Overflow(kind="queue", target="second"))
    second = queue("second", max_wait_ms=120 * S, overflow=ir.Overflow(kind="hangup"))
    acd = acd_with([first, second], [agent("a", ["second"])])
    acd.set_not_ready(1, "a", "x")
    acd.enqueue(10, "moved", "first")
    acd.enqueue(30 * S, "local", "second")
    out = acd.advance(10 + 60 * S)
    assert out == [Overflow("moved", "first", "queue", "second", 60 * S, 10 + 60 * S),
                   CallQueued("moved", "second", 0, 10 + 60 * S)]
    assert acd.waiting("second") == ["moved", "local"]  # older than "local": ahead of it
    assert acd.next_deadline() == 30 * S + 120 * S      # local's max wait; moved's counts from the move
    out = acd.set_ready(70 * S, "a")
    acd.answer(71 * S, "moved")
    assert rung(out) == [("moved", "a")]


def test_max_wait_passing_while_ringing_overflows_only_if_the_ring_fails():
    q = queue(max_wait_ms=20 * S, ring_timeout_ms=15 * S, overflow=ir.Overflow(kind="hangup"))
    for answered in (True, False):
        acd = acd_with([q], [agent("a")])
        acd.set_not_ready(1, "a", "x")
        acd.enqueue(10, "c", "general")
        acd.set_ready(10 * S, "a")  # rings from 10 s; max wait falls at 20 s, the ring timeout at 25 s
        assert of(Overflow, acd.advance(21 * S)) == [] and acd.call_state("c") == ("ringing", "a")
        if answered:
            assert of(CallAnswered, acd.answer(22 * S, "c")) != []
            assert of(Overflow, acd.advance(100 * S)) == []
        else:
            out = acd.advance(100 * S)
            assert of(Overflow, out) == [Overflow("c", "general", "hangup", None, 25 * S - 10, 25 * S)]
            assert acd.call_state("c") is None


def test_callback_keeps_the_callers_place_and_asks_the_agent_to_call_back():
    q = queue(max_wait_ms=60 * S, overflow=ir.Overflow(kind="callback"), announce_position_ms=30 * S)
    acd = acd_with([q], [agent("a")])
    acd.set_not_ready(1, "a", "x")
    acd.enqueue(10, "patient", "general")
    acd.enqueue(20, "impatient", "general")
    out = acd.advance(10 + 60 * S)
    assert Overflow("patient", "general", "callback", None, 60 * S, 10 + 60 * S) in out
    assert CallbackScheduled("patient", "general", 1, 10 + 60 * S) in out
    out = acd.advance(20 + 60 * S)
    assert of(CallbackScheduled, out) == [CallbackScheduled("impatient", "general", 2, 20 + 60 * S)]
    assert of(Ignored, acd.hangup(62 * S, "patient")) != []  # the caller hangs up: the callback stays
    acd.enqueue(65 * S, "late", "general")
    assert acd.waiting("general") == ["patient", "impatient", "late"]
    assert of(Announce, acd.advance(99 * S)) == [Announce("late", 3, None)]  # callbacks hear nothing
    out = acd.set_ready(100 * S, "a")
    assert of(RingAgent, out) == [RingAgent("patient", "a", 15 * S, callback=True)]
    out = acd.answer(101 * S, "patient")
    assert of(CallBack, out) == [CallBack("patient", "a")] and of(Bridge, out) == []
    assert of(CallAnswered, out)[0].callback
    assert of(CallEnded, acd.hangup(200 * S, "patient")) != []


# ------------------------------------------------------------------ announcements

def test_position_is_announced_every_period_while_waiting_and_skipped_while_ringing():
    acd = acd_with([queue(announce_position_ms=30 * S, ring_timeout_ms=60 * S)], [agent("a")])
    acd.enqueue(1, "x", "general")
    acd.answer(1, "x")
    acd.enqueue(1 * S, "c1", "general")   # announced at 31, 61, 91... s
    acd.enqueue(11 * S, "c2", "general")  # announced at 41, 71, 101... s
    assert of(Announce, acd.advance(45 * S)) == [Announce("c1", 1, None), Announce("c2", 2, None)]
    acd.hangup(65 * S, "x")               # a takes c1: it rings from 65 s
    assert acd.call_state("c1") == ("ringing", "a")
    assert of(Announce, acd.advance(95 * S)) == [Announce("c2", 1, None)]  # none for c1 at 91 s
    acd.answer(96 * S, "c1")
    assert of(Announce, acd.advance(200 * S)) == [Announce("c2", 1, None)] * 4  # 101, 131, 161, 191 s


def test_expected_wait_is_position_times_average_handle_time_over_staffed_agents():
    q = queue(announce_wait_ms=60 * S)
    acd = acd_with([q], [agent("a"), agent("b")])
    acd.enqueue(10, "h1", "general")
    serve(acd, 10, "h1", talk_ms=100 * S)            # a: handle time 100 s
    acd.enqueue(200 * S, "h2", "general")            # b, idle since 1 ms, before a, idle since 100 s
    serve(acd, 200 * S, "h2", talk_ms=300 * S)       # b: handle time 300 s -> mean 200 s
    acd.set_not_ready(600 * S, "a", "x")             # a on a break: does not staff the queue
    acd.enqueue(600 * S, "busy", "general")          # b takes it and stays on it
    acd.answer(600 * S, "busy")
    acd.set_ready(601 * S, "a")
    acd.enqueue(601 * S, "busy2", "general")         # a takes it: both agents now on calls
    acd.answer(601 * S, "busy2")
    acd.enqueue(610 * S, "w1", "general")
    acd.enqueue(611 * S, "w2", "general")
    out = acd.advance(671 * S)
    # 2 agents staff the queue, AHT 200 s: first in line 100 s, second 200 s
    assert of(Announce, out) == [Announce("w1", None, 100), Announce("w2", None, 200)]


def test_announcements_stop_once_the_call_is_answered():
    acd = acd_with([queue(announce_position_ms=10 * S)], [agent("a")])
    acd.enqueue(10, "c1", "general")
    acd.answer(20, "c1")
    assert acd.next_deadline() is None
    assert of(Announce, acd.advance(100 * S)) == []


def test_queue_status_counts_the_line_callbacks_and_staff():
    q = queue(max_wait_ms=30 * S, overflow=ir.Overflow(kind="callback"))
    acd = acd_with([q], [agent("a"), agent("b"), agent("c")])
    acd.set_not_ready(1, "c", "lunch")
    acd.enqueue(10, "talking", "general")
    acd.answer(10, "talking")
    acd.set_not_ready(11, "b", "meeting")
    acd.set_ready(12, "b")
    acd.enqueue(20, "c1", "general")       # b
    acd.answer(20, "c1")
    acd.enqueue(10 * S, "c2", "general")   # waits; a callback from 40 s
    acd.enqueue(20 * S, "c3", "general")
    status = acd.queue_status("general")
    assert (status.waiting, status.callbacks, status.longest_wait_ms, status.ready, status.staffed) == \
        (2, 0, 10 * S, 0, 2)
    acd.advance(45 * S)
    assert acd.queue_status("general").callbacks == 1


# ------------------------------------------------------------------ inputs that do not fit

def test_inputs_that_do_not_fit_are_ignored_with_a_reason():
    acd = acd_with([queue()], [agent("a")])
    assert acd.answer(1, "nobody") == [Ignored("nobody", "the ACD does not hold this call")]
    assert acd.login(2, "ghost") == [Ignored("ghost", "no agent named 'ghost'")]
    assert acd.login(3, "a") == [Ignored("a", "already logged in")]
    assert acd.enqueue(4, "c", "nowhere") == [Ignored("c", "no queue named 'nowhere'")]
    acd.enqueue(5, "c", "general")
    assert acd.enqueue(6, "c", "general") == [Ignored("c", "the call is already ringing")]
    acd.answer(7, "c")
    assert acd.answer(8, "c") == [Ignored("c", "the call is not ringing")]
    assert acd.decline(9, "c") == [Ignored("c", "the call is not ringing")]


def test_a_bundle_overflowing_into_a_missing_queue_is_refused_with_its_name():
    q = queue(max_wait_ms=1, overflow=ir.Overflow(kind="queue", target="nowhere"))
    with pytest.raises(ValueError, match="'general' overflows into 'nowhere'"):
        Acd({"general": q}, {})


# ------------------------------------------------------------------ time

def test_deadlines_fire_at_their_own_time_and_time_never_runs_backwards():
    acd = acd_with([queue(ring_timeout_ms=5 * S)], [agent("a"), agent("b")])
    acd.enqueue(10, "c1", "general")
    acd.enqueue(20, "c2", "general")
    assert acd.next_deadline() == 10 + 5 * S
    out = acd.enqueue(60 * S, "c3", "general")  # deadlines due before the input fire first
    assert [a.at for a in of(AgentStateChanged, out)] == [10 + 5 * S, 20 + 5 * S]
    assert of(CallQueued, out) == [CallQueued("c3", "general", 0, 60 * S)]
    out = acd.hangup(1 * S, "c3")  # an earlier `now` counts as the latest time seen
    assert out == [CallAbandoned("c3", "general", 0, 60 * S)]


def test_a_zero_ring_timeout_fires_within_the_same_input():
    acd = acd_with([queue(ring_timeout_ms=0)], [agent("a")])
    out = acd.enqueue(10, "c1", "general")
    assert [type(a) for a in out] == [CallQueued, AgentStateChanged, RingAgent, StopRinging, AgentStateChanged]


# ------------------------------------------------------------------ from a compiled project

def test_an_acd_runs_from_a_compiled_bundle(tmp_path: Path):
    (tmp_path / "acd.flow").write_text("""
queue vip "VIP" {
    strategy skills
    skills vip >= 2
    ring timeout 10s
    wrapup 5s
    max wait 60s then callback
}
agent zhang "张伟" { extension "1001"  skills vip 3  queues vip }
agent li "李娜" { extension "1002"  skills vip 1  queues vip }
""", encoding="utf-8")
    result = compile_project([tmp_path])
    assert result.ok, [d.headline() for d in result.diagnostics]
    acd = Acd.from_bundle(result.bundle)
    acd.login(0, "zhang")
    acd.login(0, "li")
    out = acd.enqueue(1, "call-1", "vip", priority=5)
    assert of(RingAgent, out) == [RingAgent("call-1", "zhang", 10 * S)]
    out = serve(acd, 2, "call-1", talk_ms=S)
    assert of(AgentStateChanged, out)[-1] == AgentStateChanged("zhang", "wrap_up", None, 2 + S)
