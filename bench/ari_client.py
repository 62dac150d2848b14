"""Many ARI requests at once through the ARI client, against a real Asterisk.

    .venv/bin/python bench/ari_client.py [--requests 2000] [--max-concurrent 256] [--rounds 5]
        [--url http://127.0.0.1:8088/ari] [--user flowdesk] [--password flowdesk]

Each round sends `--requests` GET /asterisk/ping at once through one AriClient (one aiohttp
session, at most `--max-concurrent` in flight) and times them until the last reply. The first
round also opens the connections; the figure is the median of the rounds, with the fastest and
slowest beside it, and how many requests had to be retried (Asterisk refuses HTTP sessions
beyond its http.conf `sessionlimit`, 100 by default).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.ari.client import AriClient  # noqa: E402


class RetryCounter(logging.Handler):
    """Counts the client's "retrying" log lines."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.retries += "retrying" in record.getMessage()


async def one_round(client: AriClient, requests: int) -> float:
    started = time.perf_counter()
    replies = await asyncio.gather(*(client.ping() for _ in range(requests)))
    elapsed = time.perf_counter() - started
    assert all(reply["ping"] == "pong" for reply in replies)
    return elapsed


async def bench(args: argparse.Namespace) -> None:
    counter = RetryCounter()
    logger = logging.getLogger("flowdesk.ari")
    logger.addHandler(counter)
    logger.setLevel(logging.INFO)
    async with AriClient(args.url, args.user, args.password, "flowdesk-bench",
                         max_concurrent=args.max_concurrent) as client:
        times = [await one_round(client, args.requests) for _ in range(args.rounds)]
    print(f"{args.requests} concurrent ping() requests, max_concurrent={args.max_concurrent}: "
          f"median {statistics.median(times):.3f} s (fastest {min(times):.3f} s, slowest {max(times):.3f} s, "
          f"first {times[0]:.3f} s; {args.rounds} rounds; {counter.retries} retries)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8088/ari")
    parser.add_argument("--user", default="flowdesk")
    parser.add_argument("--password", default="flowdesk")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--max-concurrent", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
