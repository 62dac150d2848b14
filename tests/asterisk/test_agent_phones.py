"""The agents' SIP phones rendered from the example hotline, loaded by the sandbox's real Asterisk."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from compiler import compile_project
from runtime.ari.asterisk_config import render

pytestmark = pytest.mark.asterisk

ROOT = Path(__file__).resolve().parents[2]


def ari(asterisk, method: str, path: str) -> tuple[int, object]:
    request = urllib.request.Request(asterisk.url + path, method=method, headers=asterisk.headers())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def listed_endpoints(asterisk) -> set[str]:
    """The PJSIP endpoints ARI lists; it answers 404 when there are none at all."""
    status, body = ari(asterisk, "GET", "/endpoints/PJSIP")
    assert status in (200, 404), body
    return {endpoint["resource"] for endpoint in body} if status == 200 else set()


def configured(asterisk, kind: str, name: str) -> dict[str, str] | None:
    """The settings res_pjsip holds for one endpoint, auth or aor, or None when it has none.

    ARI's endpoint list is no guide to what is configured: res_pjsip keeps an endpoint it once had
    in that list until Asterisk restarts, even after the configuration no longer has it."""
    status, body = ari(asterisk, "GET", f"/asterisk/config/dynamic/res_pjsip/{kind}/{name}")
    assert status in (200, 404), body
    return {item["attribute"]: item["value"] for item in body} if status == 200 else None


def reload_pjsip(asterisk) -> None:
    status, body = ari(asterisk, "PUT", "/asterisk/modules/res_pjsip.so")
    assert status == 204, body


def until(condition, seconds: float = 10):
    """Wait for `condition()` to hold (a reload finishes after ARI has answered)."""
    deadline = time.monotonic() + seconds
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def test_the_agents_phones_load_into_asterisk_and_leave_with_their_file(asterisk):
    bundle = compile_project([ROOT / "flows", ROOT / "schemas"]).bundle
    extensions = {agent.extension for agent in bundle.agents.values()}
    assert '#tryinclude "pjsip_flowdesk.conf"' in (asterisk.root / "etc/asterisk/pjsip.conf").read_text()
    target = asterisk.root / "etc/asterisk/pjsip_flowdesk.conf"
    assert not target.exists(), "another test left its phones behind"
    assert not any(configured(asterisk, "endpoint", ext) for ext in extensions)
    target.write_text(render(bundle, agent_password=lambda ext: f"pw-{ext}")["pjsip_flowdesk.conf"])
    try:
        reload_pjsip(asterisk)
        assert until(lambda: all(configured(asterisk, "endpoint", ext) for ext in extensions))
        assert extensions <= listed_endpoints(asterisk)
        endpoint = configured(asterisk, "endpoint", "8001")
        assert {key: endpoint[key] for key in ("context", "allow", "direct_media", "callerid", "auth", "aors")} == {
            "context": "flowdesk-agents", "allow": "(ulaw|alaw)", "direct_media": "false",
            "callerid": '"李娜" <8001>', "auth": "8001", "aors": "8001"}
        auth = configured(asterisk, "auth", "8401")
        assert (auth["auth_type"], auth["username"], auth["password"]) == ("userpass", "8401", "pw-8401")
        assert configured(asterisk, "aor", "8102")["max_contacts"] == "1"
    finally:
        target.unlink()
        reload_pjsip(asterisk)
    assert until(lambda: not any(configured(asterisk, "endpoint", ext) for ext in extensions))
