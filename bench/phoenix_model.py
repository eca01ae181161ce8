"""Ranker throughput: plain full-sequence pass (passes of config.num_candidates, as the reference
does, run as one batch) versus the prefix-cache path, at 1, 100 and 1,000 candidates.

    python -m foryou.cli bench phoenix_model [--configs demo,serving] [--repeats N]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

from bench.common import percentiles_ms, print_table  # noqa: E402
from phoenix.config import RankerConfig, demo_ranker_config, serving_ranker_config  # noqa: E402
from phoenix.features import CandidateItem, HistoryItem  # noqa: E402
from phoenix.runtime import RankerRuntime  # noqa: E402

CONFIGS = {"demo": demo_ranker_config, "serving": serving_ranker_config}
COUNTS = (1, 100, 1000)


def synthetic_request(config: RankerConfig, num_candidates: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    history = [HistoryItem(int(rng.integers(1, 2**40)), int(rng.integers(1, 10**6)),
                           tuple(int(a) for a in rng.choice(18, size=2, replace=False)), int(rng.integers(0, 10)))
               for _ in range(config.history_len)]
    candidates = [CandidateItem(int(rng.integers(1, 2**40)), int(rng.integers(1, 10**6)), 1)
                  for _ in range(num_candidates)]
    return 12345, history, candidates


def time_calls(fn, repeats: int) -> list[float]:
    fn()  # compile / warm up this shape
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def bench_config(name: str, repeats: int) -> list[list[object]]:
    config = CONFIGS[name]()
    runtime = RankerRuntime.init(config, seed=0)
    rows = []
    for count in COUNTS:
        request = synthetic_request(config, count)
        plain = time_calls(lambda: runtime.rank_full_sequence(*request), repeats)
        prefix = time_calls(lambda: runtime.rank(*request), repeats)
        diff = float(np.abs(runtime.rank(*request) - runtime.rank_full_sequence(*request)).max())
        plain_p50, plain_p99 = percentiles_ms(plain)
        prefix_p50, prefix_p99 = percentiles_ms(prefix)
        for path, p50, p99 in (("plain", plain_p50, plain_p99), ("prefix", prefix_p50, prefix_p99)):
            rows.append([name, path, count, p50, p99, count / (p50 / 1000.0),
                         f"{plain_p50 / p50:.1f}x", f"{diff:.1e}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="foryou bench phoenix_model")
    parser.add_argument("--configs", default="demo,serving", help="comma-separated: demo, serving")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv or [])
    rows = []
    for name in args.configs.split(","):
        rows += bench_config(name.strip(), args.repeats)
    print_table("Phoenix ranker: plain full-sequence pass vs prefix cache (float32, CPU)",
                ["config", "path", "candidates", "p50 ms", "p99 ms", "candidates/s", "speedup", "max |diff|"],
                rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
