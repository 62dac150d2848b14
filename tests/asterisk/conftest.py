"""The real Asterisk for end-to-end tests: `scripts/asterisk-sandbox` (docs/asterisk-sandbox.md).

Tests marked `asterisk` take the `asterisk` fixture. The session starts the sandbox once (building
its root the first time, about a minute) and stops it at the end only if it started it, so a
sandbox a developer keeps running stays up. Without root the sandbox cannot exist and the tests
are skipped; any other failure to start fails them with the script's own message.
"""
from __future__ import annotations

import base64
import os
import subprocess
import sys
from dataclasses import dataclass
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "asterisk-sandbox"


def pytest_configure(config):
    config.addinivalue_line("markers", "asterisk: needs the real Asterisk of scripts/asterisk-sandbox (root)")


@dataclass(frozen=True)
class Ari:
    """Where the sandbox's ARI answers and with which credentials."""

    url: str  # http://127.0.0.1:PORT/ari
    user: str
    password: str
    root: Path

    def headers(self, password: str | None = None) -> dict[str, str]:
        """HTTP basic authentication, with another password to see a wrong one refused."""
        token = base64.b64encode(f"{self.user}:{password or self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def events_url(self, app: str) -> str:
        return self.url.replace("http://", "ws://", 1) + f"/events?app={app}"


def run_sandbox(*args: str, user: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """scripts/asterisk-sandbox ARGS, as `user` if given, with `env` added to the environment."""
    as_user = ["runuser", "-u", user, "--"] if user else []
    return subprocess.run([*as_user, str(SCRIPT), *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=900)


def sandbox_script():
    """scripts/asterisk-sandbox as a module (it has no .py suffix)."""
    loader = SourceFileLoader("asterisk_sandbox", str(SCRIPT))
    if loader.name not in sys.modules:
        module = sys.modules[loader.name] = module_from_spec(spec_from_loader(loader.name, loader))
        loader.exec_module(module)
    return sys.modules[loader.name]


@pytest.fixture(scope="session")
def sandbox():
    return run_sandbox


@pytest.fixture(scope="session")
def asterisk():
    if os.geteuid() != 0:
        pytest.skip("the Asterisk sandbox needs root: it builds a chroot and mounts /proc in it")
    started = run_sandbox("start")
    if started.returncode != 0:
        pytest.fail(f"scripts/asterisk-sandbox start failed (exit {started.returncode}):\n"
                    f"{started.stdout}{started.stderr[-6000:]}", pytrace=False)
    port = os.environ.get("FLOWDESK_ARI_PORT", "8088")
    root = Path(run_sandbox("path").stdout.strip())
    waiting = lambda: print("\nwaiting for the sandbox's application `flowdesk` (a benchmark holds it)", file=sys.stderr)
    with sandbox_script().application_held(root, waiting):
        yield Ari(url=f"http://127.0.0.1:{port}/ari", user="flowdesk",
                  password=os.environ.get("FLOWDESK_ARI_PASSWORD", "flowdesk"), root=root)
    if started.stdout.startswith("started"):
        stopped = run_sandbox("stop")
        assert stopped.returncode == 0, stopped.stderr
