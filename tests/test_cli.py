"""The `flowdesk` command line: the contract other tools and people rely on (exit codes, output)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flowdesk.cli import main

GOOD = 'queue general {\n    strategy longest_idle\n}\n\nflow main {\n    answer\n    say "您好"\n    enqueue general\n}\n'
BAD = 'flow main {\n    enqueue genral\n}\n'


@pytest.fixture
def good(tmp_path) -> Path:
    (tmp_path / "main.flow").write_text(GOOD, encoding="utf-8")
    return tmp_path


def test_check_clean_exits_0(good, capsys):
    assert main(["check", str(good)]) == 0
    assert "1 file checked: no problems" in capsys.readouterr().out


def test_check_errors_exit_1_with_located_message(tmp_path, capsys):
    (tmp_path / "bad.flow").write_text(BAD, encoding="utf-8")
    assert main(["check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "bad.flow:2:13: error[E201]: unknown queue 'genral'" in err
    assert "2 |     enqueue genral" in err


def test_missing_path_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nowhere")]) == 1
    assert "error[E110]: no such file or folder" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["check"])
    assert exit.value.code == 2
    with pytest.raises(SystemExit) as exit:
        main(["frobnicate"])
    assert exit.value.code == 2


def test_warnings_fail_only_with_strict(tmp_path):
    (tmp_path / "w.flow").write_text('flow main {\n    hangup\n    say "x"\n    hangup\n}\n', encoding="utf-8")
    assert main(["check", str(tmp_path)]) == 0
    assert main(["check", "--strict", str(tmp_path)]) == 1


def test_compile_writes_the_bundle(good, tmp_path):
    out = tmp_path / "build" / "bundle.json"
    assert main(["compile", str(good / "main.flow"), "-o", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["flows"]["main"]["steps"][1]["text"] == [{"text": "您好", "expr": None}]
    assert data["hash"].startswith("sha256:")


def test_compile_with_errors_writes_nothing(tmp_path):
    (tmp_path / "bad.flow").write_text(BAD, encoding="utf-8")
    out = tmp_path / "bundle.json"
    assert main(["compile", str(tmp_path), "-o", str(out)]) == 1
    assert not out.exists()


def test_graph_prints_dot(good, capsys):
    assert main(["graph", str(good / "main.flow"), "--flow", "main"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith('digraph "main"') and '"answer@1" -> "say@2"' in dot


def test_graph_unknown_flow_suggests_one(good, capsys):
    assert main(["graph", str(good / "main.flow"), "--flow", "mian"]) == 1
    assert "did you mean 'main'?" in capsys.readouterr().err


def test_graph_svg_needs_graphviz_or_says_so(good, tmp_path, capsys):
    import shutil

    out = tmp_path / "main.svg"
    status = main(["graph", str(good / "main.flow"), "--flow", "main", "-o", str(out)])
    if shutil.which("dot"):
        assert status == 0 and out.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    else:
        assert status == 1 and "Graphviz" in capsys.readouterr().err and not out.exists()


def test_console_script_runs():
    exe = Path(sys.executable).with_name("flowdesk")
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "check" in result.stdout
