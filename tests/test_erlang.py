"""Erlang C against values published in standard Erlang C tables and worked examples."""
import math

import pytest

from runtime.erlang import (agents_needed, average_speed_of_answer, erlang_b, erlang_c, service_level,
                            traffic_erlangs)


def test_erlang_b_table_values():
    # Erlang B tables: 10 Erlangs on 15 trunks blocks 3.65%; 2 Erlangs on 5 trunks 3.67%.
    assert erlang_b(15, 10) == pytest.approx(0.0365, abs=5e-4)
    assert erlang_b(5, 2) == pytest.approx(0.0367, abs=5e-4)


def test_the_classic_worked_example():
    # 360 calls in 30 minutes (720/hour), 240 s handle time = 48 Erlangs.  With 55 agents the
    # published answer: P(wait) 0.2387, service level 86.7% within 20 s, ASA 8.2 s.
    a = traffic_erlangs(720, 240)
    assert a == 48
    assert erlang_c(55, a) == pytest.approx(0.2387, abs=5e-4)
    assert service_level(55, 720, 240, 20) == pytest.approx(0.867, abs=1e-3)
    assert average_speed_of_answer(55, 720, 240) == pytest.approx(8.2, abs=0.05)
    assert agents_needed(720, 240, 0.80, 20) == 54
    assert service_level(54, 720, 240, 20) >= 0.80 > service_level(53, 720, 240, 20)


@pytest.mark.parametrize("agents, erlangs", [(3, 2), (10, 7.5), (55, 48), (120, 100)])
def test_agrees_with_the_closed_form(agents, erlangs):
    top = erlangs ** agents / math.factorial(agents) * agents / (agents - erlangs)
    expected = top / (top + sum(erlangs ** k / math.factorial(k) for k in range(agents)))
    assert erlang_c(agents, erlangs) == pytest.approx(expected, rel=1e-9)


def test_small_queue_table_value():
    # 2 Erlangs on 3 agents: P(wait) = 0.4444 (C(3, 2) from the closed form).
    assert erlang_c(3, 2) == pytest.approx(4 / 9, abs=1e-9)


def test_overload_has_no_service():
    assert erlang_c(5, 6) == 1.0
    assert service_level(5, 100, 216, 20) == 0.0
    assert math.isinf(average_speed_of_answer(5, 100, 216))
    assert agents_needed(0, 240, 0.8, 20) == 0
