"""Screen pop latency: from the ACD reserving the agent to the agent's page updated.

    .venv/bin/python bench/screen_pop.py [--calls 30]

Runs the studio with the simulated telephony on a copy of the example project (SQLite), logs an
agent in in headless Chromium (Debian's /usr/bin/chromium), goes ready, and places one call at a
time (the caller presses 0 for a person).  For each call it compares the server's wall-clock time
when the ACD's RingAgent reached the desktop hub (the pop's `data-reserved-at`) with the
browser's wall-clock time (performance.timeOrigin + performance.now()) when

  - received: the SSE extension got the `pop` event (htmx:sseBeforeMessage), and
  - swapped:  the pop was in the DOM (a MutationObserver on the pop's container).

Server and browser run on the same machine and read the same clock.  Prints p50/p99/max in ms.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-password-1"
CALLER = "13800138000"
OPENING = dt.datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # within the hotline's hours

WATCH = """
() => {
  window.popTimes = {};
  const now = () => performance.timeOrigin + performance.now();
  const idOf = (text) => (text.match(/data-call-id="([^"]+)"/) || [])[1];
  document.body.addEventListener('htmx:sseBeforeMessage', (event) => {
    if (event.detail.type !== 'pop') return;
    const id = idOf(event.detail.data);
    if (id) (window.popTimes[id] = window.popTimes[id] || {}).received = now();
  });
  new MutationObserver(() => {
    const pop = document.querySelector('#desk-pop .pop');
    if (!pop) return;
    const entry = (window.popTimes[pop.dataset.callId] = window.popTimes[pop.dataset.callId] || {});
    if (!entry.swapped) { entry.swapped = now(); entry.reserved = parseFloat(pop.dataset.reservedAt) * 1000; }
  }).observe(document.querySelector('#desk-pop'), {childList: true, subtree: true});
}
"""

POST = """
async ([path, data]) => {
  const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token'];
  const reply = await fetch(path, {method: 'POST', headers: {'X-CSRF-Token': token},
                                   body: new URLSearchParams(data)});
  return [reply.status, await reply.text()];
}
"""


def build_app(folder: Path):
    from runtime.crm.users import SYSTEM
    from studio import desktop
    from studio.app import create_app

    for part in ("flows", "schemas"):
        shutil.copytree(ROOT / part, folder / part)
    shutil.copy(ROOT / "flowdesk.yaml", folder / "flowdesk.yaml")
    began = time.monotonic()
    clock = lambda: OPENING + dt.timedelta(seconds=time.monotonic() - began)  # noqa: E731
    app = create_app(folder, db_url=f"sqlite:///{folder / 'bench.db'}", extra_routes=desktop.routes,
                     on_startup=[desktop.start_telephony], clock=clock)
    app.state.studio.store.create(SYSTEM, "Customer", {"name": "王小明", "phone": CALLER})
    app.state.studio.accounts.set_password("li_na", PASSWORD)
    return app


@contextlib.contextmanager
def serving(app):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def run(base: str, calls: int) -> list[dict]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page()
        page.goto(f"{base}/login?next=/desktop")
        page.fill("input[name=user]", "li_na")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/desktop")
        page.wait_for_selector("#agent-state:text-is('未就绪')")  # the stream is connected
        page.evaluate(WATCH)
        post = lambda path, **data: page.evaluate(POST, [path, data])  # noqa: E731
        post("/desktop/state", action="ready")
        for _ in range(calls):
            status, text = post("/desktop/call", caller=CALLER, dialed="4008001000", keys="0")
            call_id = re.search(r"\((sim-[^)]+)\)", text).group(1)
            page.wait_for_function("id => window.popTimes[id] && window.popTimes[id].swapped", arg=call_id,
                                   timeout=15_000)
            post("/desktop/answer")
            post("/desktop/hangup")
            post("/desktop/state", action="wrap_up_done")
        times = page.evaluate("window.popTimes")
        browser.close()
    return list(times.values())


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    os.environ.setdefault("FLOWDESK_SECRET", "screen-pop-bench")
    with tempfile.TemporaryDirectory() as folder:
        app = build_app(Path(folder))
        with serving(app) as base:
            times = run(base, args.calls)
    print(f"screen pop latency over {len(times)} calls (server reservation -> browser), ms:")
    for what in ("received", "swapped"):
        values = [t[what] - t["reserved"] for t in times if what in t and "reserved" in t]
        print(f"  {what:9} p50 {percentile(values, .5):6.1f}  p99 {percentile(values, .99):6.1f}  "
              f"max {max(values):6.1f}  mean {statistics.mean(values):6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
