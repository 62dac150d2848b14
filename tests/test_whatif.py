"""What-if simulation of one queue through the real call centre, against Erlang C."""
from __future__ import annotations

import pytest

from compiler import compile_project
from flowdesk.cli import main
from runtime import erlang
from runtime.whatif import WhatIfError, duration, simulate

PROJECT = """
queue plain {
    strategy longest_idle
    ring timeout 15s
    service level 80% within 20s
}
queue busy {
    strategy skills
    skills billing >= 2
    max wait 30s then voicemail "busy"
    ring timeout 15s
    wrapup 30s
    service level 80% within 20s
}
queue spill {
    strategy longest_idle
    announce position every 10s
    max wait 20s then queue plain
    ring timeout 15s
}
agent li_na { queues plain }
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whatif")
    (folder / "queues.flow").write_text(PROJECT, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def bundle(project):
    return compile_project([project]).bundle


# 240 calls/h of 60 s is 4 Erlangs on 6 agents (occupancy 2/3): Erlang C says 85.4 % within 20 s
# and an ASA of 8.5 s.  12 hours are about 2,900 calls.  Over seeds 1-10 the simulated figures
# came out at 85.8 % ± 2.1 % (sd) and 8.1 s ± 1.4 s, so three standard deviations make the
# tolerance; five agents would miss it by far (60.3 %, 33 s).
ERLANG_CASE = dict(calls_per_hour=240, agents=6, aht_ms=60_000, patience_ms=None, hours=12, seed=1)
SL_TOLERANCE, ASA_TOLERANCE_S = 0.065, 4.2


@pytest.fixture(scope="module")
def erlang_run(bundle):
    # Erlang C's world: nobody hangs up, answering takes no time, no after-call work.
    return simulate(bundle, "plain", **ERLANG_CASE, ring_ms=0, wrapup_ms=0)


def test_where_erlang_c_holds_the_simulation_agrees(erlang_run):
    r = erlang_run
    predicted_sl = erlang.service_level(6, 240, 60, 20)
    predicted_asa = erlang.average_speed_of_answer(6, 240, 60)
    assert abs(r.service_level - predicted_sl) < SL_TOLERANCE
    assert abs(r.asa_s - predicted_asa) < ASA_TOLERANCE_S
    assert (r.erlang_service_level, r.erlang_asa_s) == (predicted_sl, predicted_asa)
    assert abs(r.occupancy - 4 / 6) < 0.03
    assert abs(r.offered - 240 * 12) < 4 * (240 * 12) ** 0.5  # Poisson: sd is the square root
    assert r.abandoned == 0 and r.answered == r.offered


def test_the_tolerance_would_catch_one_agent_too_few(erlang_run):
    assert abs(erlang_run.service_level - erlang.service_level(5, 240, 60, 20)) > SL_TOLERANCE
    assert abs(erlang_run.asa_s - erlang.average_speed_of_answer(5, 240, 60)) > ASA_TOLERANCE_S


def test_impatient_callers_abandon_and_the_rest_are_answered_sooner(bundle):
    case = dict(calls_per_hour=240, agents=5, aht_ms=60_000, hours=3, seed=2, ring_ms=0, wrapup_ms=0)
    patient = simulate(bundle, "plain", patience_ms=None, **case)
    impatient = simulate(bundle, "plain", patience_ms=30_000, **case)
    assert patient.abandoned == 0
    assert impatient.abandoned > 0 and impatient.abandon_rate > 0.05
    assert impatient.service_level > patient.service_level
    assert impatient.asa_s < patient.asa_s


def test_with_agents_to_spare_every_caller_waits_just_the_ring(bundle):
    r = simulate(bundle, "plain", 60, 20, 60_000, None, 1, seed=5)
    assert r.answered == r.offered > 0
    assert r.asa_s == pytest.approx(2.0) and r.service_level == 1.0


def test_the_queue_keeps_its_own_wrapup_skills_and_overflow(bundle):
    # Too few agents: callers waiting 30 s leave for voicemail, as the queue says.
    r = simulate(bundle, "busy", 240, 2, 60_000, None, 1, seed=3)
    assert r.wrapup_ms == 30_000 and r.ring_ms == 2000
    assert r.answered > 0  # the made-up agents have the skill the queue needs
    assert r.overflowed > 0 and r.answered + r.overflowed == r.offered
    assert r.occupancy > 0.9


def test_callers_moved_to_another_queue_count_as_overflowed(bundle):
    r = simulate(bundle, "spill", 240, 2, 60_000, None, 2, seed=4)
    assert r.overflowed > 0 and r.answered + r.overflowed == r.offered


def test_the_same_seed_gives_the_same_figures(bundle):
    runs = [simulate(bundle, "plain", 120, 3, 90_000, 60_000, 1, seed=7) for _ in range(2)]
    assert runs[0] == runs[1]
    assert simulate(bundle, "plain", 120, 3, 90_000, 60_000, 1, seed=8) != runs[0]


@pytest.mark.parametrize("change, message", [
    (dict(queue="nowhere"), "there is no queue 'nowhere' in the project (the queues are: busy, plain, spill)"),
    (dict(agents=0), "agents must be more than 0"),
    (dict(calls_per_hour=-10), "calls per hour must be more than 0"),
    (dict(aht_ms=0), "AHT must be more than 0"),
    (dict(patience_ms=0), "patience must be more than 0"),
    (dict(ring_ms=20_000), "stops ringing after 15000 ms"),
])
def test_questions_that_cannot_be_asked_say_why(bundle, change, message):
    case = dict(queue="plain", calls_per_hour=60, agents=2, aht_ms=60_000, patience_ms=None, hours=1) | change
    with pytest.raises(WhatIfError) as error:
        simulate(bundle, **case)
    assert message in str(error.value)


def test_durations():
    assert [duration(t) for t in ("240s", "4m", "1h", "1500ms", "90", "none")] == \
        [240_000, 240_000, 3_600_000, 1500, 90_000, None]
    with pytest.raises(ValueError, match="not a duration"):
        duration("4x")


# ------------------------------------------------------------------ the command line

def whatif(project, *options):
    return main(["whatif", str(project), "--queue", "plain", "--aht", "60s", *options])


def test_cli_prints_simulated_figures_next_to_erlang_c(project, capsys):
    assert whatif(project, "--calls-per-hour", "120", "--agents", "4", "--hours", "1", "--patience", "2m") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ("queue plain: 120 calls/h, 4 agents, AHT 60 s, wrap-up 0 s, ring 2 s, "
                                   "patience 120 s, 1 h")
    assert "simulated    Erlang C" in out
    assert "service level (20 s)" in out and "target 80 %" in out
    for label in ("ASA", "abandoned", "occupancy", "calls", "answered"):
        assert any(line.startswith(label) for line in out.splitlines())


@pytest.mark.parametrize("options, code, message", [
    (["--calls-per-hour", "60", "--agents", "2", "--queue", "nowhere"], 1, "no queue named 'nowhere'"),
    (["--calls-per-hour", "60", "--agents", "0"], 2, "agents must be more than 0"),
    (["--calls-per-hour", "-60", "--agents", "2"], 2, "calls per hour must be more than 0"),
])
def test_cli_bad_input_is_an_error_not_a_traceback(project, capsys, options, code, message):
    assert whatif(project, *options) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_bad_duration_is_a_usage_error(project, capsys):
    with pytest.raises(SystemExit) as exit_:
        whatif(project, "--calls-per-hour", "60", "--agents", "2", "--patience", "soon")
    assert exit_.value.code == 2
    assert "invalid duration value: 'soon'" in capsys.readouterr().err
