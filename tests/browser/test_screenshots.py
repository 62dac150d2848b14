"""`make screenshots` (scripts/screenshots): every main page of the studio saved as a PNG."""
from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return struct.unpack(">II", head[16:24])


def test_the_documented_command_saves_each_main_page(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "screenshots"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    saved = sorted(p.name for p in tmp_path.glob("*.png"))
    assert done.stdout.split() == [str(tmp_path / name) for name in saved]
    assert saved == [f"{name}.png" for name in (
        "01-login", "02-customers", "03-customer", "04-tickets", "05-ticket", "06-new-ticket",
        "07-desktop-screen-pop", "08-supervisor-sla", "09-wallboard", "10-reports", "11-staffing", "12-workspace",
        "13-editor", "14-form-editor", "15-simulator", "16-publish", "17-qa-calls", "18-qa-scoring",
        "19-qa-trends", "20-my-scores")]
    for name in saved:
        width, height = png_size(tmp_path / name)
        assert width == 1440 and height >= 900, name
