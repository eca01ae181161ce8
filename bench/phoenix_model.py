"""Ranker throughput: plain full-sequence pass (passes of config.num_candidates, as the reference
does, run as one batch) versus the prefix-cache path, at 1, 100 and 1,000 candidates.

    python -m foryou.cli bench phoenix_model [--configs demo,serving] [--repeats N]

Runs JAX with the Phoenix service's XLA flags (phoenix/settings.py).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time
from typing import Any

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from bench.common import percentiles_ms, print_table, use_phoenix_xla_flags  # noqa: E402

use_phoenix_xla_flags()

import numpy as np  # noqa: E402

from phoenix.config import V2_INPUTS, RankerConfig, demo_ranker_config, serving_ranker_config  # noqa: E402
from phoenix.content import ContentStore  # noqa: E402
from phoenix.sid import fit_codebook  # noqa: E402
from phoenix.features import CandidateItem, HistoryItem  # noqa: E402
from phoenix.runtime import RankerRuntime  # noqa: E402

def _v2(make):
    return lambda: dataclasses.replace(make(), inputs=V2_INPUTS)


# "-v2": the same sizes with the v2 inputs (semantic ids, content projection, post age, dwell).
CONFIGS = {"demo": demo_ranker_config, "serving": serving_ranker_config,
           "demo-v2": _v2(demo_ranker_config), "serving-v2": _v2(serving_ranker_config)}
COUNTS = (1, 100, 1000)


def synthetic_request(config: RankerConfig, num_candidates: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    history = [HistoryItem(int(rng.integers(1, 2**40)), int(rng.integers(1, 10**6)),
                           tuple(int(a) for a in rng.choice(18, size=2, replace=False)), int(rng.integers(0, 10)))
               for _ in range(config.history_len)]
    candidates = [CandidateItem(int(rng.integers(1, 2**40)), int(rng.integers(1, 10**6)), 1)
                  for _ in range(num_candidates)]
    return 12345, history, candidates


def time_calls(fn, repeats: int) -> tuple[list[float], float]:
    """Wall-clock samples (s) and the least CPU time (s, all threads) one call took."""
    fn()  # compile / warm up this shape
    fn()
    samples, cpu = [], float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()  # returns numpy arrays, so the device work is finished
        samples.append(time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return samples, cpu


def v2_runtime(config: RankerConfig) -> RankerRuntime:
    """A v2 runtime whose store holds content vectors (and codes) for the synthetic requests' posts."""
    store = ContentStore()
    found: set[int] = set()
    for count in COUNTS:
        _, history, candidates = synthetic_request(config, count)
        found.update(item.post_id for item in (*history, *candidates))
    ids = sorted(found)
    vectors = np.random.default_rng(1).normal(size=(len(ids), 256)).astype(np.float32)
    store.put(ids, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    i = config.inputs
    book = fit_codebook(store.get(ids), i.sid_levels, i.sid_codes) if i.sid_levels else None
    base = RankerRuntime.init(config, seed=0)
    return RankerRuntime(config, base.params, book, store)


def bench_config(name: str, repeats: int) -> list[list[Any]]:
    config = CONFIGS[name]()
    v2 = bool(config.inputs.content_dim or config.inputs.sid_levels)
    runtime = v2_runtime(config) if v2 else RankerRuntime.init(config, seed=0)
    rows = []
    for count in COUNTS:
        request = synthetic_request(config, count)
        plain, plain_cpu = time_calls(lambda: runtime.rank_full_sequence(*request), repeats)
        prefix, prefix_cpu = time_calls(lambda: runtime.rank(*request), repeats)
        diff = float(np.abs(runtime.rank(*request) - runtime.rank_full_sequence(*request)).max())
        plain_p50 = percentiles_ms(plain)[0]
        for path, samples, cpu in (("plain", plain, plain_cpu), ("prefix", prefix, prefix_cpu)):
            p50, p99 = percentiles_ms(samples)
            rows.append([name, path, count, p50, p99, min(samples) * 1000.0, cpu * 1000.0,
                         count / (p50 / 1000.0), f"{plain_p50 / p50:.1f}x", f"{diff:.1e}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="foryou bench phoenix_model")
    parser.add_argument("--configs", default="demo,demo-v2,serving,serving-v2",
                        help="comma-separated: demo, serving, demo-v2 (what the demo preset serves), serving-v2")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv or [])
    load_before = os.getloadavg()[0]  # other processes compete for the same cores
    rows: list[list[Any]] = []
    for name in args.configs.split(","):
        rows += bench_config(name.strip(), args.repeats)
    print_table(f"Phoenix ranker: plain vs prefix-cache path (float32, CPU; 1-min load avg at start "
                f"{load_before:.1f})",
                ["config", "path", "candidates", "p50 ms", "p99 ms", "min ms", "cpu ms", "candidates/s (p50)",
                 "speedup (p50)", "max |diff|"],
                rows)
    p50 = {(r[0], r[1], r[2]): r[3] for r in rows}
    ratios = [[f"{name} / {name[:-3]}", path, count, f"{p50[(name, path, count)] / p50[(name[:-3], path, count)]:.2f}x"]
              for (name, path, count) in p50 if name.endswith("-v2") and (name[:-3], path, count) in p50]
    if ratios:
        print_table("v2 inputs against v1, same run (p50 ratio)", ["configs", "path", "candidates", "p50 ratio"],
                    ratios)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
