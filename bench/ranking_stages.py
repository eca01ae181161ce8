"""`foryou bench ranking_stages`: the newer ranking stages' own cost per request
(home_mixer/stages/), each on synthetic columns of N candidates (default 1,000) with
256-d content vectors. The DPP runs at its defaults (top 150 by score -> 50) and over the
whole batch (N -> --k, default 35), the case its incremental Cholesky is written for."""
from __future__ import annotations

import argparse
import time

import numpy as np

from bench.common import percentiles_ms, print_table
from home_mixer.stages.cold_start import cold_start_lift
from home_mixer.stages.dpp import dpp_select
from home_mixer.stages.mutual_follow import boosted_combined, mutual_follow_mask
from home_mixer.stages.oon_reply_repost import oon_reply_repost_keep
from home_mixer.candidates import PostBatch, related_id_hit
from home_mixer.stages.served import recent_served_ids


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return percentiles_ms(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="foryou bench ranking_stages")
    parser.add_argument("--candidates", type=int, default=1_000)
    parser.add_argument("--k", type=int, default=35)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)
    n, rng = args.candidates, np.random.default_rng(0)
    scores = rng.gamma(2.0, 1.0, n)
    vectors = rng.normal(size=(n, args.dim)).astype(np.float32)
    authors = rng.integers(1, n // 4 + 2, n)
    flags = rng.random((4, n)) < np.array([[0.2], [0.1], [0.5], [0.9]])
    related = PostBatch(n, {name: rng.integers(1, 10 * n, n) for name in
                            ("post_id", "repost_of_post_id", "in_reply_to_post_id")})
    served = rng.integers(1, 10 * n, 2_000)
    served_at = 3_600_000 - np.sort(rng.integers(0, 3_600_000, 2_000))  # newest first, within the hour
    following, followers = rng.integers(1, n // 4 + 2, 300), rng.integers(1, n // 4 + 2, 300)
    followers_count, impressions = rng.integers(0, 5_000, n), rng.integers(0, 5_000, n)
    stages = [
        ("OutOfNetworkReplyRepost", lambda: oon_reply_repost_keep(flags[0], flags[1], flags[2], flags[3])),
        ("PreviouslyServed (10 min, at most 100, of 2,000)",
         lambda: ~related_id_hit(related, recent_served_ids(served, served_at, 3_600_000, 600_000, 100))),
        ("MutualFollowReplyBoost", lambda: boosted_combined(
            scores, scores, mutual_follow_mask(authors, ~flags[0], following, followers), 15.0)),
        ("AuthorColdStart", lambda: cold_start_lift(scores, ~flags[0], followers_count, impressions)),
        ("DPP, top 150 -> 50 (defaults)", lambda: dpp_select(scores, vectors, window=150, k=50)),
        (f"DPP, {n:,} -> {args.k}", lambda: dpp_select(scores, vectors, window=n, k=args.k)),
        ("DPP without vectors (top-k)", lambda: dpp_select(scores, None, window=150, k=50)),
    ]
    rows = [[name, *timed(fn, args.repeats)] for name, fn in stages]
    print_table(f"newer ranking stages, {n:,} candidates, {args.repeats} runs each", ["stage", "p50 ms", "p99 ms"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
