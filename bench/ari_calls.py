"""Real calls on the sandbox Asterisk: the example hotline on the ARI runtime against the same
first menu written as plain dialplan, with N calls up at once.

    sudo .venv/bin/python bench/ari_calls.py [--calls 100,500,1000] [--rate 20] [--hold 25] [--quick]

Needs the running sandbox (scripts/asterisk-sandbox start) and root (to read Asterisk's CPU time
in /proc).  The runtime takes the sandbox's one application `flowdesk`, so the benchmark waits
while the end-to-end tests hold it (the sandbox's application lock), and they wait for it.
For each N, two loads run one after the other in the same run:

- hotline: the runtime (bench/ari_runtime.py, a process of its own) serves the example project on
  the application `flowdesk`, with N agents who answer by themselves after a second.  Callers
  dial `Local/4008001000@flowdesk/n`, hear the jingle and the welcome, press 0 a second into the
  main menu, hear "正在为您转接人工服务", wait in the general queue with music, and talk to an
  agent until they hang up.  Every call is recorded, as the hotline says.
- baseline: callers dial `Local/4008001000@flowdesk-baseline/n` (the sandbox's [flowdesk-baseline]:
  Answer, Background of a prompt, WaitExten), press 0 a second into the prompt, hear a beep.

Callers speak G.711 A-law (bench/ari_callers.py) and are dialled at `--rate` per second; each
stays on the line N/rate + `--hold` seconds from its dialling, so all N are up at once for about
`--hold` seconds, then they hang up at the same rate.  A call is complete when Asterisk reported the reaction to its key (and, on the hotline,
the agent's bridge) and nothing ended it before the caller hung up.

Figures per load: calls dialled and complete; answered calls per second (first to last answer);
the most callers up at once; the time from a key press to the reaction as Asterisk's event
timestamps show it (ms resolution), and inside the runtime, from the key's event reaching the
call to the call's next request; CPU seconds of the runtime process and of Asterisk (its
/proc/PID/stat, everything it did in the window: other users of the sandbox count too), from
the first dial until every channel is gone and the runtime has fetched the recordings.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ari_callers import Call, Callers, Ivr  # noqa: E402
from runtime.ari.client import AriError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HOTLINE = "4008001000"
KEY = "0"


def load_sandbox_script():
    """scripts/asterisk-sandbox as a module: where the sandbox is and which processes are its Asterisk."""
    loader = SourceFileLoader("asterisk_sandbox", str(ROOT / "scripts/asterisk-sandbox"))
    module = sys.modules[loader.name] = module_from_spec(spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


# ------------------------------------------------------------------ CPU time from /proc

def cpu_of(pids: list[int]) -> float:
    """User plus system seconds of these processes (all their threads) so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def asterisk_cpu(args: argparse.Namespace) -> tuple[tuple[int, ...], float]:
    """The sandbox's Asterisk processes (found again each time: a test may restart it) and their CPU seconds."""
    pids = tuple(args.sandbox.asterisk_pids(args.asterisk_root))
    return pids, cpu_of(pids)


def cpu_between(before: tuple[tuple[int, ...], float], after: tuple[tuple[int, ...], float]) -> float | None:
    """CPU seconds from one reading to the next; None when Asterisk restarted in between."""
    return after[1] - before[1] if before[0] == after[0] else None


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------ the runtime process

class Runtime:
    """bench/ari_runtime.py in a process of its own; its stderr goes to a log file."""

    def __init__(self, args: argparse.Namespace, agents: int, work: Path):
        self.args, self.agents, self.work = args, agents, work
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> dict:
        self.log = open(self.work / "runtime.log", "wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bench/ari_runtime.py"), "--agents", str(self.agents),
            "--work", str(self.work), "--asterisk-root", str(self.args.asterisk_root), "--url", self.args.url,
            "--user", self.args.user, "--password", self.args.password,
            *(["--without-recording"] if self.args.without_recording else []),
            stdout=asyncio.subprocess.PIPE, stderr=self.log, limit=2**26)  # the report is one long line
        line = await asyncio.wait_for(self.process.stdout.readline(), 120)
        if not line:
            raise SystemExit(f"the runtime did not start:\n{self.log_tail()}")
        return json.loads(line)

    async def stop(self) -> dict:
        self.process.terminate()
        line = await asyncio.wait_for(self.process.stdout.readline(), 120)
        await self.process.wait()
        self.log.close()
        return json.loads(line) if line else {"error": self.log_tail()}

    def log_tail(self) -> str:
        return "\n".join((self.work / "runtime.log").read_text(errors="replace").splitlines()[-20:])


# ------------------------------------------------------------------ one load

@dataclass
class Result:
    ivr: Ivr
    n: int
    calls: list[Call]
    window_s: float
    asterisk_cpu_s: float | None    # None: Asterisk restarted during the load
    runtime: dict = field(default_factory=dict)
    runtime_cpu_s: float | None = None
    peak: int = 0
    leftovers: dict[str, int] = field(default_factory=dict)

    def complete(self, call: Call) -> bool:
        return (call.error is None and call.reaction_ms is not None and not call.dropped and not call.fallback
                and (call.bridged or not self.ivr.wants_agent))

    @property
    def completed(self) -> int:
        return sum(self.complete(call) for call in self.calls)

    @property
    def answered_per_s(self) -> float:
        times = sorted(call.answered_at for call in self.calls if call.answered_at is not None)
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    @property
    def reactions(self) -> list[float]:
        return [call.reaction_ms for call in self.calls if call.reaction_ms is not None]

    def problems(self) -> dict[str, int]:
        seen: dict[str, int] = {}
        for call in self.calls:
            if self.complete(call):
                continue
            reason = (call.error or ("given to the fallback" if call.fallback else None)
                      or ("ended before the caller hung up" if call.dropped else None)
                      or ("no key press seen" if call.pressed is None else None)
                      or ("no reaction seen" if call.reaction_ms is None else "no agent"))
            seen[reason] = seen.get(reason, 0) + 1
        return seen


async def run_load(args, callers: Callers, ivr: Ivr, n: int, tag: str) -> tuple[list[Call], float, tuple, int]:
    """Dial N calls at the rate and let them run; (calls, window start, Asterisk's CPU reading at start, peak)."""
    ramp = n / args.rate
    began = time.perf_counter() + 0.5
    # Asterisk refuses a channel id that begins another channel's id: neither id here begins another.
    calls = [Call(id=f"{tag}-{i}-phone", callee=f"{tag}-{i}-call", due=began + i / args.rate,
                  hang_up_at=began + i / args.rate + ramp + args.hold) for i in range(n)]
    callers.expect(ivr, calls)
    cpu_before = asterisk_cpu(args)
    await asyncio.gather(*(callers.place(call, f"139{i:08d}", KEY, args.key_delay) for i, call in enumerate(calls)))
    await until_gone(callers, tag + "-")
    return calls, began, cpu_before, callers.peak


async def until_gone(callers: Callers, prefix: str, timeout: float = 30) -> None:
    """Until Asterisk has none of the load's channels left (the runtime's agent legs included)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        channels = await callers.client.request("GET", "/channels")
        if not any(channel["id"].startswith(prefix) for channel in channels):
            return
        await asyncio.sleep(0.5)


async def leftovers(callers: Callers, prefix: str) -> dict[str, int]:
    """Hang up what is still there after the load (it should be nothing); how many of each kind
    ("call-agent-1" is an agent's phone, "call-snoop" a recording's snoop, "phone" a caller)."""
    left = [ch["id"] for ch in await callers.client.request("GET", "/channels") if ch["id"].startswith(prefix)]

    async def hang_up(channel_id: str) -> None:
        try:
            await callers.client.hangup(channel_id)
        except AriError:
            pass
    await asyncio.gather(*(hang_up(channel_id) for channel_id in left))
    kinds: dict[str, int] = {}
    for channel_id in left:
        kind = channel_id[len(prefix):].split("-", 1)[-1]
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


async def hotline_load(args, callers: Callers, n: int, tag: str) -> Result:
    work = args.work / tag
    work.mkdir()
    runtime = Runtime(args, agents=n, work=work)
    ready = await runtime.start()
    ivr = Ivr("hotline", f"Local/{HOTLINE}@flowdesk/n", menu_uri=ready["menu_uri"], wants_agent=True)
    try:
        calls, began, cpu_before, peak = await run_load(args, callers, ivr, n, tag)
    finally:
        stats = await runtime.stop()  # after the calls' work is done: recordings fetched
        shutil.rmtree(work / "recordings", ignore_errors=True)
    result = Result(ivr, n, calls, time.perf_counter() - began,
                    cpu_between(cpu_before, asterisk_cpu(args)), stats, stats.get("cpu_s"), peak)
    result.leftovers = await leftovers(callers, tag + "-")
    await delete_recordings(callers, tag)
    return result


async def baseline_load(args, callers: Callers, n: int, tag: str) -> Result:
    ivr = Ivr("baseline", f"Local/{HOTLINE}@flowdesk-baseline/n")
    calls, began, cpu_before, peak = await run_load(args, callers, ivr, n, tag)
    result = Result(ivr, n, calls, time.perf_counter() - began,
                    cpu_between(cpu_before, asterisk_cpu(args)), peak=peak)
    result.leftovers = await leftovers(callers, tag + "-")
    return result


async def delete_recordings(callers: Callers, tag: str) -> None:
    """The hotline recorded every call in the sandbox's spool; the runtime has fetched them."""
    async def delete(name: str) -> None:
        try:
            await callers.client.delete_stored_recording(name)
        except AriError:
            pass
    stored = await callers.client.list_stored_recordings()
    await asyncio.gather(*(delete(r["name"]) for r in stored if r["name"].startswith(f"call-{tag}-")))


# ------------------------------------------------------------------ report

def cuts(values: list[float]) -> tuple[float, float] | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0], values[0]
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[98]


def ms(pair: tuple[float, float] | None) -> str:
    return "-" if pair is None else f"{pair[0]:.0f} / {pair[1]:.0f}" if pair[1] >= 10 else f"{pair[0]:.1f} / {pair[1]:.1f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "-"
    return f"{a / b:.1f}x" if a / b < 10 else f"{a / b:,.0f}x"


def reaction_ratio(a: float | None, b: float | None) -> str:
    """Asterisk's timestamps count whole milliseconds: a baseline under 1 ms only bounds the ratio."""
    if a is None or b is None or b >= 1:
        return ratio(a, b)
    return f"> {a:,.0f}x (baseline under 1 ms)"


def row(result: Result, rate: float) -> str:
    runtime_ms = result.runtime.get("key_to_request_ms")
    runtime = "-" if result.runtime_cpu_s is None else \
        f"{result.runtime_cpu_s:.1f} s ({100 * result.runtime_cpu_s / result.window_s:.0f} %)"
    asterisk = "restarted during the load" if result.asterisk_cpu_s is None else \
        f"{result.asterisk_cpu_s:.1f} s ({100 * result.asterisk_cpu_s / result.window_s:.0f} %), " \
        f"{1000 * result.asterisk_cpu_s / len(result.calls):.0f} ms"
    return (f"| {result.n:,} | {result.ivr.name} | {len(result.calls):,} / {result.completed:,} | "
            f"{result.answered_per_s:.1f} (of {rate:g}) | {result.peak:,} | {ms(cuts(result.reactions))} | "
            f"{ms(cuts(runtime_ms)) if runtime_ms is not None else '-'} | {runtime} | {asterisk} | "
            f"{result.window_s:.0f} s |")


def runtime_details(rt: dict) -> list[str]:
    """What the runtime process said about itself after a load."""
    if not rt:
        return []
    if "error" in rt:
        return [f"runtime: {rt['error']}"]
    requests = rt["requests_ms"]
    everything = [t for times in requests.values() for t in times]
    slowest = sorted(requests, key=lambda kind: -cuts(requests[kind])[1])[:4]
    lines = [
        f"runtime: key event from Asterisk's timestamp to the runtime, p50 / p99 {ms(cuts(rt['key_event_lag_ms']))} ms; "
        f"first request after a key {rt['first_requests']}; key presses without a request {rt['presses_unanswered']}",
        f"runtime: {len(everything):,} ARI requests, p50 / p99 {ms(cuts(everything))} ms, at most "
        f"{rt['most_requests_in_flight']} in flight; slowest kinds (p50 / p99 ms): "
        + "; ".join(f"{kind} {ms(cuts(requests[kind]))} (×{len(requests[kind]):,})" for kind in slowest),
        f"runtime: faults {rt['faults']}, calls unfinished at the stop {rt['lanes_left']}, "
        f"peak memory {rt['max_rss_mib']:.0f} MiB",
    ]
    return lines + [f"runtime log ×{count}: {text}" for text, count in rt["complaints"].items()]


def report(pairs: list[tuple[Result, Result]], args: argparse.Namespace, own_cpu_s: float, wall_s: float) -> None:
    print("\n| N | IVR | dialled / complete | answered/s | most up at once | key → reaction, Asterisk p50 / p99 ms "
          "| key → next request, runtime p50 / p99 ms | runtime CPU (% of a core) | Asterisk CPU (% of a core), "
          "per call | window |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for hotline, baseline in pairs:
        print(row(hotline, args.rate))
        print(row(baseline, args.rate))
    print("\nhotline / baseline:")
    for hotline, baseline in pairs:
        h, b = cuts(hotline.reactions), cuts(baseline.reactions)
        per_call = [None if r.asterisk_cpu_s is None else r.asterisk_cpu_s / len(r.calls) for r in (hotline, baseline)]
        print(f"  N={hotline.n:,}: key → reaction p50 {reaction_ratio(h and h[0], b and b[0])}, "
              f"p99 {reaction_ratio(h and h[1], b and b[1])}; Asterisk CPU per call {ratio(*per_call)}")
    print("\nper load:")
    for result in (r for pair in pairs for r in pair):
        problems = result.problems()
        print(f"  N={result.n:,} {result.ivr.name}: incomplete calls: "
              + (", ".join(f"{k}: {v}" for k, v in problems.items()) or "none"))
        if result.leftovers:
            print(f"    channels left over after the load, hung up: "
                  + ", ".join(f"{kind} {count}" for kind, count in sorted(result.leftovers.items())))
        for line in runtime_details(result.runtime):
            print(f"    {line}")
    print(f"\nload generator: {own_cpu_s:.1f} CPU s in {wall_s:.0f} s of wall time; "
          f"the runtime's logs and event logs: {args.work}")


# ------------------------------------------------------------------ main

async def bench(args: argparse.Namespace) -> None:
    pairs = []
    began, cpu = time.perf_counter(), own_cpu()
    run = secrets.token_hex(3)
    args.work = Path(tempfile.mkdtemp(prefix=f"flowdesk-ari-bench-{run}-"))
    async with Callers(args.url, args.user, args.password) as callers:
        for n in args.calls:
            print(f"N={n:,}: hotline ...", flush=True)
            hotline = await hotline_load(args, callers, n, f"bench-{run}-h{n}")
            print(f"N={n:,}: {hotline.completed:,} of {n:,} complete; baseline ...", flush=True)
            await asyncio.sleep(args.pause)
            baseline = await baseline_load(args, callers, n, f"bench-{run}-b{n}")
            print(f"N={n:,}: {baseline.completed:,} of {n:,} complete", flush=True)
            pairs.append((hotline, baseline))
            await asyncio.sleep(args.pause)
    report(pairs, args, own_cpu() - cpu, time.perf_counter() - began)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="100,500,1000", help="calls up at once, one load per number")
    parser.add_argument("--rate", type=float, default=20.0, help="calls dialled per second while ramping up")
    parser.add_argument("--hold", type=float, default=25.0, help="seconds all N calls stay up at once")
    parser.add_argument("--key-delay", type=float, default=1.0, help="seconds into the menu before the key")
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between loads")
    parser.add_argument("--quick", action="store_true", help="one load of 20 calls")
    parser.add_argument("--without-recording", action="store_true",
                        help="what if the hotline did not record its calls (its `record` step does nothing)")
    args = parser.parse_args()
    args.calls = [20] if args.quick else [int(n) for n in args.calls.replace("_", "").split(",")]
    sandbox = load_sandbox_script()
    settings = sandbox.read_settings(None)  # FLOWDESK_ASTERISK_ROOT, FLOWDESK_ARI_PORT, FLOWDESK_ARI_PASSWORD
    args.url, args.user, args.password = settings.ari_url, sandbox.ARI_USER, settings.password
    args.sandbox, args.asterisk_root = sandbox, settings.root
    if os.geteuid() != 0:
        sys.exit("run as root: Asterisk's CPU time is read from /proc, and the sandbox's media folder is written")
    if not sandbox.asterisk_pids(settings.root):
        sys.exit(f"no Asterisk runs in {args.asterisk_root}: sudo scripts/asterisk-sandbox start")
    return args


def main() -> None:
    args = parse_args()
    waiting = lambda: print("waiting: the end-to-end tests hold the sandbox's application `flowdesk`", flush=True)
    with args.sandbox.application_held(args.asterisk_root, waiting):
        asyncio.run(bench(args))


if __name__ == "__main__":
    main()
