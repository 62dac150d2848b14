"""A flow's picture with a call's path on it: the steps taken are lit, the step the call is at is marked."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from compiler import compile_project
from compiler.graph import to_dot, to_svg

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hotline():
    result = compile_project([ROOT / "flows", ROOT / "schemas"])
    assert result.bundle is not None, result.errors
    return result.bundle.flows["hotline"]


def node_line(dot: str, step_id: str) -> str:
    return next(line for line in dot.splitlines() if line.startswith(f'  "{step_id}" ['))


def test_without_a_path_the_picture_is_unchanged(hotline):
    assert to_dot(hotline) == to_dot(hotline, lit=(), current=None)
    assert "class=" not in to_dot(hotline)


def test_the_steps_taken_are_lit_and_the_current_one_marked(hotline):
    dot = to_dot(hotline, lit=["answer@1", "play@2", "main_menu"], current="main_menu")
    assert 'class="lit"' in node_line(dot, "answer@1") and "fillcolor" in node_line(dot, "play@2")
    assert 'class="lit current"' in node_line(dot, "main_menu") and "penwidth=3" in node_line(dot, "main_menu")
    assert "class=" not in node_line(dot, "say@3")                 # not taken
    assert sum('class="lit' in line for line in dot.splitlines()) == 3


def test_the_current_step_is_marked_even_when_not_in_the_lit_set(hotline):
    dot = to_dot(hotline, lit=set(), current="main_menu")
    assert 'class="lit current"' in node_line(dot, "main_menu")


def test_ids_of_other_flows_light_nothing(hotline):
    assert to_dot(hotline, lit={"nowhere", "balance_inquiry/x"}, current="nowhere") == to_dot(hotline)


def test_the_svg_groups_carry_the_classes(hotline):
    if shutil.which("dot") is None:
        pytest.fail("Graphviz's dot is not installed (scripts/system-packages)")
    svg = to_svg(to_dot(hotline, lit={"answer@1"}, current="main_menu"))
    groups = dict((title, cls) for cls, title in re.findall(r'<g id="node\d+" class="([^"]*)">\s*<title>([^<]*)</title>', svg))
    assert groups["answer@1"] == "node lit" and groups["main_menu"] == "node lit current"
    assert groups["say@3"] == "node"
