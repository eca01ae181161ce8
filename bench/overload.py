"""Overload ramp: each server as its own process (`foryou thunder`, `foryou phoenix --preset
tiny`, `foryou home-mixer` with its dependencies unreachable), driven by 1 -> 1,100 concurrent
closed-loop clients with the deadline its real caller sets; a refused client pauses 50 ms
before its next call. Per level: admitted calls' p50/p99, refusals (RESOURCE_EXHAUSTED) and
their p50/p99, other errors, the server's RSS.

    foryou bench overload                                  # every server, the full ramp
    foryou bench overload --services thunder --clients 1,16,256 --duration 3
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os

from bench.common import print_table
from bench.overload_load import OK, REFUSED, TARGETS, drive, running


async def ramp(service: str, kafka: str, levels: list[int], duration_s: float) -> list[list[object]]:
    rows = []
    async with running(service, kafka) as (process, target):
        # Warm-up with a long deadline: a shape's first call may compile (Phoenix).
        await drive(process.address, dataclasses.replace(target, timeout_s=300.0), 1, 2.0)
        for clients in levels:
            level = await drive(process.address, target, clients, duration_s)
            others = {c: n for c, n in level.codes.items() if c not in (OK, REFUSED)}
            rows.append([service, clients, level.requests, round(level.requests / level.duration_s),
                         level.count(OK), level.p(OK, 50), level.p(OK, 99),
                         level.count(REFUSED), level.p(REFUSED, 50), level.p(REFUSED, 99),
                         ", ".join(f"{c} {n}" for c, n in others.items()) or "0", round(process.rss_mb())])
            print(" | ".join(map(str, rows[-1])), flush=True)
    return rows


async def amain(args: argparse.Namespace) -> int:
    from foryou.broker import EmbeddedBroker, create_topics

    with EmbeddedBroker() as broker:
        await create_topics(broker.bootstrap_servers)
        rows = []
        for service in args.services:
            # Phoenix ranks without a corpus feed; the others read (empty) topics.
            kafka = "" if service == "phoenix" else broker.bootstrap_servers
            rows += await ramp(service, kafka, args.clients, args.duration)
    print_table(f"overload ramp, {args.duration:.0f}s per level, closed-loop clients (load average "
                f"{os.getloadavg()[0]:.1f} at the end)",
                ["server", "clients", "calls", "calls/s", "ok", "ok p50 ms", "ok p99 ms", "refused",
                 "refused p50 ms", "refused p99 ms", "other errors", "RSS MB"], rows)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="foryou bench overload", description=__doc__.splitlines()[0])
    parser.add_argument("--services", default="thunder,home-mixer,phoenix",
                        help=f"comma-separated, of {', '.join(TARGETS)}")
    parser.add_argument("--clients", default="1,4,16,64,256,1100", help="comma-separated concurrency levels")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per level")
    args = parser.parse_args(argv)
    args.services = args.services.split(",")
    args.clients = [int(c) for c in args.clients.split(",")]
    return asyncio.run(amain(args))
