"""The ACD under arbitrary interleavings of calls, agents and time (hypothesis).

A state machine drives the ACD with random inputs and keeps its own account of every call and agent
from the actions that come out, checking each action against that account as it arrives (an agent
is only offered a call when ready, a call is only answered by the agent it rings, ...) and, after
every step, that the ACD's own view agrees and its invariants hold.
"""
from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from compiler import ir
from runtime.acd import Acd
from runtime.acd_actions import (AgentStateChanged, Announce, Bridge, CallAbandoned, CallAnswered, CallBack,
                                 CallbackScheduled, CallEnded, CallQueued, Ignored, Overflow, RingAgent,
                                 StopRinging)

S = 1000
QUEUES = ["q0", "q1", "q2"]
AGENTS = ["a0", "a1", "a2", "a3", "a4"]
STRATEGIES = ["longest_idle", "fewest_calls", "round_robin", "skills", "preferred"]


@st.composite
def queues(draw) -> dict[str, ir.Queue]:
    out = {}
    for name in QUEUES:
        strategy = draw(st.sampled_from(STRATEGIES))
        needs = [ir.SkillNeed(skill="s", min_level=draw(st.integers(1, 3)))] if strategy == "skills" or draw(st.booleans()) else []
        kind = draw(st.sampled_from([None, "voicemail", "queue", "callback", "hangup"]))
        target = {"voicemail": "box", "queue": draw(st.sampled_from([q for q in QUEUES if q != name]))}.get(kind)
        out[name] = ir.Queue(
            name=name, strategy=strategy, skills=needs, priority=draw(st.integers(0, 2)),
            ring_timeout_ms=draw(st.sampled_from([0, 5 * S, 15 * S])), wrapup_ms=draw(st.sampled_from([0, 5 * S])),
            max_wait_ms=draw(st.sampled_from([10 * S, 60 * S])) if kind else None,
            overflow=ir.Overflow(kind=kind, target=target) if kind else None,
            announce_position_ms=draw(st.sampled_from([None, 10 * S])),
            announce_wait_ms=draw(st.sampled_from([None, 20 * S])))
    return out


@st.composite
def agents(draw) -> dict[str, ir.Agent]:
    return {name: ir.Agent(name=name, queues=draw(st.lists(st.sampled_from(QUEUES), min_size=1, unique=True)),
                           skills={"s": draw(st.integers(0, 5))}) for name in AGENTS}


class AcdMachine(RuleBasedStateMachine):
    """Rules feed the ACD; `take` checks and records every action that comes back."""

    @initialize(qs=queues(), ags=agents(),
                start=st.lists(st.sampled_from(["logged_out", "ready", "not_ready"]), min_size=len(AGENTS), max_size=len(AGENTS)))
    def build(self, qs, ags, start):
        self.queues, self.agents = qs, ags
        self.acd = Acd(qs, ags)
        self.now = 0
        self.index = {a: i for i, a in enumerate(AGENTS)}
        self.state = {a: "logged_out" for a in AGENTS}
        self.serving = {a: set() for a in AGENTS}
        self.idle_since = {a: 0 for a in AGENTS}
        self.answered = Counter()
        self.holds: dict[str, str | None] = {a: None for a in AGENTS}
        self.place: dict[str, object] = {}      # call -> "waiting" | ("ringing", a) | ("connected", a) | "finished"
        self.queue_of, self.first_at, self.order, self.priority = {}, {}, {}, {}
        self.preferred, self.rung_before, self.moving = {}, set(), {}
        self.callbacks, self.abandoned = set(), Counter()
        self.pointer = {q: -1 for q in QUEUES}
        self.issued = 0
        for a, state in zip(AGENTS, start):
            if state != "logged_out":
                self.login(a, state == "ready")

    # ------------------------------------------------------------------ inputs

    @rule(q=st.sampled_from(QUEUES), priority=st.integers(0, 2), preferred=st.sampled_from([None, *AGENTS]),
          prefer_for=st.sampled_from([0, 10 * S, 60 * S]))
    def enqueue(self, q, priority, preferred, prefer_for):
        if self.queues[q].strategy == "round_robin":
            preferred = None  # keeps the round-robin pointer check simple
        call_id = f"c{self.issued}"
        self.issued += 1
        self.preferred[call_id] = preferred
        self.take(self.acd.enqueue(self.now, call_id, q, priority=priority, preferred=preferred,
                                   prefer_for_ms=prefer_for))

    @rule(q=st.sampled_from(QUEUES), count=st.integers(2, 6))
    def rush(self, q, count):
        for _ in range(count):
            self.enqueue(q, 0, None, 0)

    @rule()
    def everyone_ready(self):
        for a in AGENTS:
            self.take(self.acd.set_ready(self.now, a))

    @precondition(lambda self: self.issued)
    @rule(n=st.integers(0, 10_000))
    def hangup(self, n):
        self.take(self.acd.hangup(self.now, f"c{n % self.issued}"))

    @precondition(lambda self: self.issued)
    @rule(n=st.integers(0, 10_000), decline=st.booleans())
    def answer_or_decline(self, n, decline):
        ringing = sorted(c for c, p in self.place.items() if isinstance(p, tuple) and p[0] == "ringing")
        call_id = ringing[n % len(ringing)] if ringing and n % 4 else f"c{n % self.issued}"
        self.take(self.acd.decline(self.now, call_id) if decline else self.acd.answer(self.now, call_id))

    @precondition(lambda self: self.issued)
    @rule(n=st.integers(0, 10_000))
    def end_talk(self, n):
        self.take(self.acd.end_talk(self.now, f"c{n % self.issued}"))

    @rule(a=st.sampled_from(AGENTS), ready=st.booleans())
    def login(self, a, ready):
        if self.state[a] == "logged_out":
            self.serving[a] = {q for q in self.agents[a].queues
                               if all(self.agents[a].skills.get(n.skill, 0) >= n.min_level for n in self.queues[q].skills)}
        self.take(self.acd.login(self.now, a, ready=ready))

    @rule(a=st.sampled_from(AGENTS))
    def logout(self, a):
        self.take(self.acd.logout(self.now, a))

    @rule(a=st.sampled_from(AGENTS))
    def set_ready(self, a):
        self.take(self.acd.set_ready(self.now, a))

    @rule(a=st.sampled_from(AGENTS), reason=st.sampled_from(["lunch", "training"]))
    def set_not_ready(self, a, reason):
        self.take(self.acd.set_not_ready(self.now, a, reason))

    @rule(delta=st.integers(0, 30 * S))
    def tick(self, delta):
        self.now += delta
        self.take(self.acd.advance(self.now))

    @precondition(lambda self: self.acd.next_deadline() is not None)
    @rule()
    def next_deadline(self):
        self.now = self.acd.next_deadline()
        self.take(self.acd.advance(self.now))

    @rule()
    def new_day(self):
        self.answered.clear()
        self.take(self.acd.new_day(self.now))

    def answer_ringing(self):
        for c, p in sorted(self.place.items()):
            if isinstance(p, tuple) and p[0] == "ringing":
                self.take(self.acd.answer(self.now, c))

    def end_talks(self, mask: int):
        connected = sorted(c for c, p in self.place.items() if isinstance(p, tuple) and p[0] == "connected")
        for i, c in enumerate(connected):
            if mask >> (i % 8) & 1:
                self.take(self.acd.hangup(self.now, c))

    def verify_all(self):
        for name in dir(self):
            if name.startswith(("agents_", "every_", "lines_", "no_ready", "deadlines_")):
                getattr(self, name)()

    # ------------------------------------------------------------------ checking each action

    def take(self, actions):
        for i, action in enumerate(actions):
            getattr(self, f"on_{type(action).__name__}")(action, actions[i + 1:])

    def on_CallQueued(self, a: CallQueued, _):
        if a.call_id in self.place:
            assert self.moving.pop(a.call_id) == a.queue, "only an overflow may queue a call it holds again"
        else:
            self.first_at[a.call_id], self.order[a.call_id], self.priority[a.call_id] = a.at, len(self.order), a.priority
        self.place[a.call_id], self.queue_of[a.call_id] = "waiting", a.queue

    def on_AgentStateChanged(self, a: AgentStateChanged, rest):
        before = self.state[a.agent]
        allowed = {"ringing": {"ready"}, "on_call": {"ringing"}, "wrap_up": {"on_call"}}
        assert before in allowed.get(a.state, {"logged_out", "ready", "not_ready", "ringing", "on_call", "wrap_up"})
        assert before != "logged_out" or a.state in ("ready", "not_ready")
        if a.state == "ringing":
            ring = rest[0]
            assert isinstance(ring, RingAgent) and ring.agent == a.agent
            self.check_choice(ring.call_id, a.agent)
        if a.state == "ready" and before != "ringing":
            self.idle_since[a.agent] = a.at
        self.state[a.agent] = a.state

    def check_choice(self, call_id: str, agent: str):
        """The agent offered a call from the pool is the queue strategy's first choice among the
        ready agents serving the queue (the preferred agent's first ring is theirs by right)."""
        first_ring = call_id not in self.rung_before
        self.rung_before.add(call_id)
        if first_ring and self.preferred.get(call_id) == agent:
            return
        q = self.queue_of[call_id]
        queue = self.queues[q]
        ready = [b for b in AGENTS if self.state[b] == "ready" and q in self.serving[b]]
        assert agent in ready
        if queue.strategy == "round_robin":
            after = [b for b in ready if self.index[b] > self.pointer[q]]
            expected = min(after or ready, key=self.index.get)
            self.pointer[q] = self.index[agent]
        else:
            expected = min(ready, key=lambda b: self.strategy_key(queue, b))
        assert agent == expected, (queue.strategy, agent, expected)

    def strategy_key(self, queue: ir.Queue, b: str):
        idle = (self.idle_since[b], self.index[b])
        if queue.strategy == "fewest_calls":
            return (self.answered[b], *idle)
        if queue.strategy == "skills":
            return (-sum(self.agents[b].skills.get(n.skill, 0) for n in queue.skills), *idle)
        return idle

    def on_RingAgent(self, a: RingAgent, _):
        assert self.place[a.call_id] == "waiting" and self.state[a.agent] == "ringing"
        assert self.holds[a.agent] is None, "an agent is never given two calls"
        assert a.timeout_ms == self.queues[self.queue_of[a.call_id]].ring_timeout_ms
        assert a.callback == (a.call_id in self.callbacks)
        self.place[a.call_id], self.holds[a.agent] = ("ringing", a.agent), a.call_id

    def on_StopRinging(self, a: StopRinging, _):
        assert self.place[a.call_id] == ("ringing", a.agent)
        self.place[a.call_id], self.holds[a.agent] = "waiting", None

    def connect(self, call_id: str, agent: str, callback: bool):
        assert self.place[call_id] == ("ringing", agent) and self.state[agent] == "on_call"
        assert callback == (call_id in self.callbacks)
        self.place[call_id] = ("connected", agent)
        self.answered[agent] += 1

    def on_Bridge(self, a: Bridge, _):
        self.connect(a.call_id, a.agent, False)

    def on_CallBack(self, a: CallBack, _):
        self.connect(a.call_id, a.agent, True)

    def on_CallAnswered(self, a: CallAnswered, _):
        assert self.place[a.call_id] == ("connected", a.agent) and a.queue == self.queue_of[a.call_id]
        assert a.waited_ms >= 0

    def on_CallAbandoned(self, a: CallAbandoned, _):
        assert self.place[a.call_id] == "waiting" and a.call_id not in self.callbacks
        assert self.abandoned[a.call_id] == 0, "an abandon is counted once"
        assert a.waited_ms >= 0 and a.queue == self.queue_of[a.call_id]
        self.abandoned[a.call_id] += 1
        self.place[a.call_id] = "finished"

    def on_CallEnded(self, a: CallEnded, _):
        assert self.place[a.call_id] == ("connected", a.agent)
        self.place[a.call_id], self.holds[a.agent] = "finished", None

    def on_Overflow(self, a: Overflow, _):
        queue = self.queues[a.queue]
        assert self.place[a.call_id] == "waiting" and self.queue_of[a.call_id] == a.queue
        assert (a.kind, a.target) == (queue.overflow.kind, queue.overflow.target)
        assert a.waited_ms >= queue.max_wait_ms and a.call_id not in self.callbacks
        if a.kind == "queue":
            self.moving[a.call_id] = a.target
        elif a.kind == "callback":
            self.callbacks.add(a.call_id)
        else:
            self.place[a.call_id] = "finished"

    def on_CallbackScheduled(self, a: CallbackScheduled, _):
        assert a.call_id in self.callbacks and self.place[a.call_id] == "waiting"

    def on_Announce(self, a: Announce, _):
        assert self.place[a.call_id] == "waiting" and a.call_id not in self.callbacks

    def on_Ignored(self, a: Ignored, _):
        pass

    # ------------------------------------------------------------------ invariants after every step

    @invariant()
    def agents_agree_and_hold_at_most_one_call(self):
        for a in AGENTS:
            assert self.acd.agent_state(a)[0] == self.state[a]
            assert self.acd.agent_call(a) == self.holds[a]
            assert (self.holds[a] is not None) == (self.state[a] in ("ringing", "on_call"))
        held = [c for c in self.holds.values() if c is not None]
        assert len(held) == len(set(held))

    @invariant()
    def every_call_is_in_exactly_one_place(self):
        lines = [c for q in QUEUES for c in self.acd.waiting(q)] + [c for a in AGENTS for c in self.acd.waiting_for(a)]
        assert len(lines) == len(set(lines))
        assert set(lines) == {c for c, p in self.place.items() if p == "waiting"}
        for c, p in self.place.items():
            expected = None if p == "finished" else ("waiting", None) if p == "waiting" else p
            assert self.acd.call_state(c) == expected, "no call is lost"
        for q in QUEUES:
            assert all(self.queue_of[c] == q for c in self.acd.waiting(q))

    @invariant()
    def lines_keep_priority_then_age(self):
        for line in [self.acd.waiting(q) for q in QUEUES] + [self.acd.waiting_for(a) for a in AGENTS]:
            keys = [(-self.priority[c], self.first_at[c], self.order[c]) for c in line]
            assert keys == sorted(keys)

    @invariant()
    def no_ready_agent_idles_while_a_call_they_may_take_waits(self):
        for q in QUEUES:
            ready = {a for a in AGENTS if self.state[a] == "ready" and q in self.serving[a]}
            assert set(self.acd.ready_agents(q)) == ready
            assert not (ready and self.acd.waiting(q))
        for a in AGENTS:
            assert self.state[a] != "ready" or not self.acd.waiting_for(a)
            assert self.state[a] == "logged_out" or set(self.acd.serves(a)) == self.serving[a]

    @invariant()
    def deadlines_lie_ahead(self):
        deadline = self.acd.next_deadline()
        assert deadline is None or deadline > self.acd.now


AcdMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
TestAcdMachine = AcdMachine.TestCase


# ------------------------------------------------------------------ a busy centre

@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(qs=queues(), ags=agents(), rounds=st.lists(
    st.tuples(st.sampled_from(QUEUES), st.integers(1, 6), st.integers(0, 20 * S), st.integers(0, 255)), max_size=12))
def test_every_offer_in_a_busy_centre_is_the_strategys_first_choice(qs, ags, rounds):
    """Waves of calls against mostly ready agents, so that most offers choose among several agents;
    the machine's checks judge every offer and every step."""
    machine = AcdMachine()
    machine.build(qs, ags, ["ready"] * len(AGENTS))
    for q, count, pause, mask in rounds:
        machine.rush(q, count)
        machine.answer_ringing()
        machine.tick(pause)
        machine.end_talks(mask)
        machine.everyone_ready()
        machine.verify_all()


# ------------------------------------------------------------------ a freed agent's choice

@given(qprio=st.lists(st.integers(0, 3), min_size=3, max_size=3),
       member_of=st.lists(st.sampled_from(QUEUES), min_size=1, unique=True),
       calls=st.lists(st.tuples(st.sampled_from(QUEUES), st.integers(0, 3), st.integers(0, 5 * S)), max_size=20))
def test_a_freed_agent_takes_the_best_call_across_their_queues(qprio, member_of, calls):
    qs = {q: ir.Queue(name=q, strategy="longest_idle", priority=p) for q, p in zip(QUEUES, qprio)}
    acd = Acd(qs, {"a": ir.Agent(name="a", queues=member_of)})
    acd.login(0, "a", ready=False)
    now, waiting = 0, []
    for i, (q, priority, gap) in enumerate(calls):
        now += gap
        acd.enqueue(now, f"c{i}", q, priority=priority)
        if q in member_of:
            waiting.append(((-qs[q].priority, -priority, now, i), f"c{i}"))
    rings = [a for a in acd.set_ready(now, "a") if isinstance(a, RingAgent)]
    assert [r.call_id for r in rings] == ([min(waiting)[1]] if waiting else [])


# ------------------------------------------------------------------ determinism

OPS = st.lists(st.one_of(
    st.tuples(st.just("enqueue"), st.sampled_from(QUEUES), st.integers(0, 2), st.sampled_from([None, *AGENTS])),
    st.tuples(st.just("hangup"), st.integers(0, 30)),
    st.tuples(st.just("answer"), st.integers(0, 30)),
    st.tuples(st.just("login"), st.sampled_from(AGENTS)),
    st.tuples(st.just("not_ready"), st.sampled_from(AGENTS)),
    st.tuples(st.just("tick"), st.integers(0, 20 * S))), max_size=60)


def replay(qs, ags, ops) -> list:
    acd, now, out = Acd(qs, ags), 0, []
    for op in ops:
        kind, args = op[0], op[1:]
        if kind == "enqueue":
            out += acd.enqueue(now, f"c{len(out)}", args[0], priority=args[1], preferred=args[2], prefer_for_ms=5 * S)
        elif kind in ("hangup", "answer"):
            out += getattr(acd, kind)(now, f"c{args[0]}")
        elif kind == "login":
            out += acd.login(now, args[0])
        elif kind == "not_ready":
            out += acd.set_not_ready(now, args[0], "break")
        else:
            now += args[0]
            out += acd.advance(now)
    return out


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(qs=queues(), ags=agents(), ops=OPS)
def test_the_same_inputs_give_the_same_actions(qs, ags, ops):
    assert replay(qs, ags, ops) == replay(qs, ags, ops)
