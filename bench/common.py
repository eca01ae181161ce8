"""Small helpers shared by the benchmarks: percentiles, concurrent clients and a plain-text table."""
from __future__ import annotations

import asyncio
import platform
import os
import time
from collections.abc import Awaitable, Callable, Sequence

import grpc

import numpy as np


def percentiles_ms(samples_s: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds of durations given in seconds."""
    arr = np.asarray(samples_s) * 1000.0
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


async def run_clients(client: Callable[[int], Awaitable[None]], clients: int,
                      channels: Sequence[grpc.aio.Channel]) -> float:
    """Runs `client(0)` ... `client(clients - 1)` together, then closes `channels`; returns the
    seconds they ran."""
    started = time.monotonic()
    try:
        await asyncio.gather(*(client(i) for i in range(clients)))
    finally:
        for channel in channels:
            await channel.close()
    return time.monotonic() - started


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print(f"\n{title}  ({machine()})")
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print("-|-".join("-" * w for w in widths))
    for row in cells:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths)))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def use_phoenix_xla_flags() -> None:
    """Start JAX as the Phoenix service does: its XLA flags (phoenix/settings.py) before
    $XLA_FLAGS, which still win, and its intra-op thread count. Call before anything starts
    JAX, so an in-process model or server measures what the service runs."""
    from foryou.service_main import prepend_xla_flags
    from phoenix.settings import DEFAULT_XLA_FLAGS, PhoenixSettings, use_intra_op_threads

    prepend_xla_flags(DEFAULT_XLA_FLAGS)
    use_intra_op_threads(PhoenixSettings.default("intra_op_threads"))
