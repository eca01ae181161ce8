"""Example building: how fast, and in how much memory, training turns an event log into ranker
and retriever examples and the model's input arrays (phoenix/training/data.py).

    python -m foryou.cli bench examples [--engagements 1000000,4000000] [--preset small]
                                        [--chunk 4096]

The log is generated as columns (users, posts, served events of 20 posts, engagements that
follow an impression by minutes, so most impressions' labels are looked up and many hit), with
one engagement per 4 served posts. Each row runs in its own process, so its peak RSS is that
step's alone (the log's columns included): `collect` (protobuf messages -> columns, the messages
made one at a time as a topic read gives them), `ranker examples` / `retriever examples` (the
example tables: histories, labels, hard negatives' look-ups), `ranker arrays` / `retriever
arrays` (the tables plus the model's inputs built `--chunk` examples at a time, as training
batches are).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

STEPS = ("collect", "ranker examples", "ranker arrays", "retriever examples", "retriever arrays")
SHOWN = 20  # posts per served event
DAY_MS = 86_400_000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou bench examples", description=__doc__.split("\n\n")[0])
    parser.add_argument("--engagements", default="1000000,4000000", help="log sizes, comma-separated")
    parser.add_argument("--preset", default="small", help="model preset whose configs shape the arrays")
    parser.add_argument("--chunk", type=int, default=4096, help="examples per array chunk")
    parser.add_argument("--steps", default=",".join(STEPS), help="which rows")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def generated_log(n: int, seed: int = 0):
    """An EventLog of about n engagements, made as columns."""
    from foryou import snowflake
    from foryou_protos import common_pb2
    from phoenix.training.event_log import Engagements, EventLog, Posts, Served

    rng = np.random.default_rng(seed)
    users, num_posts, num_served = max(n // 200, 100), max(n // 20, 1000), max(n * 4 // SHOWN, 1)
    start = snowflake.TWITTER_EPOCH_MS + 10 * 365 * DAY_MS
    created = np.sort(start + rng.integers(0, 2 * DAY_MS, num_posts))
    ids = snowflake.make_ids(created, np.arange(num_posts))
    posts = Posts(ids, rng.integers(1, users // 10 + 2, num_posts).astype(np.uint64), np.zeros(num_posts, np.uint64),
                  np.zeros(num_posts, bool), [""] * num_posts)
    served_time = np.sort(start + DAY_MS // 2 + rng.integers(0, 3 * DAY_MS // 2, num_served))
    newest = np.searchsorted(created, served_time)  # show posts that exist then
    shown = (newest[:, None] * rng.random((num_served, SHOWN))).astype(np.int64)
    served = Served(rng.integers(1, users + 1, num_served).astype(np.uint64), served_time,
                    np.arange(0, num_served * SHOWN + 1, SHOWN, dtype=np.int64), ids[shown.reshape(-1)])
    pick = rng.integers(0, num_served * SHOWN, n)
    time_ms = served.time[pick // SHOWN] + rng.exponential(600_000, n).astype(np.int64)
    order = np.argsort(time_ms, kind="stable")
    pick, time_ms = pick[order], time_ms[order]
    actions = np.uint64(1 << common_pb2.CLICK) | (rng.integers(0, 2, n).astype(np.uint64) << np.uint64(common_pb2.FAVORITE))
    actions[rng.random(n) < 0.02] = np.uint64(1 << common_pb2.NOT_INTERESTED)
    post = served.posts[pick]
    row, _ = posts.find(post)
    engagements = Engagements(served.user[pick // SHOWN], post, posts.authors[row], time_ms, actions,
                              rng.integers(0, 60_000, n), np.ones(n, np.int32))
    return EventLog(posts, engagements, served)


def _messages(log):
    """The log's records as the topics hold them, one message at a time."""
    from foryou import topics
    from foryou_protos import common_pb2, events_pb2
    from phoenix.training.event_log import actions_of

    for p, a in zip(log.posts.ids.tolist(), log.posts.authors.tolist()):
        yield topics.POSTS, events_pb2.PostEvent(created=common_pb2.Post(post_id=p, author_id=a))
    s = log.served
    for i in range(len(s)):
        yield topics.SERVED, events_pb2.ServedEvent(user_id=int(s.user[i]), served_at_ms=int(s.time[i]),
                                                    post_ids=s.posts[s.offsets[i]:s.offsets[i + 1]].tolist())
    e = log.engagements
    for u, p, a, t, bits, d in zip(e.user.tolist(), e.post.tolist(), e.author.tolist(), e.time.tolist(),
                                   e.actions.tolist(), e.dwell.tolist()):
        yield topics.ENGAGEMENTS, common_pb2.Engagement(user_id=u, post_id=p, post_author_id=a, timestamp_ms=t,
                                                        actions=sorted(actions_of(bits)), dwell_time_ms=d)


def _in_chunks(build, examples, chunk: int) -> int:
    for lo in range(0, len(examples), chunk):
        build(examples.take(np.arange(lo, min(lo + chunk, len(examples)))))
    return len(examples)


def run_step(step: str, n: int, preset: str, chunk: int) -> dict:
    from phoenix.server_models import preset_configs
    from phoenix.training import ranker, retriever
    from phoenix.training.data import collect, rank_examples, retrieve_examples

    ranker_cfg, retriever_cfg = preset_configs(preset)
    log = generated_log(n)
    started = time.perf_counter()
    if step == "collect":
        count = len(collect(_messages(log)).engagements) + len(log.served) + len(log.posts)
        unit = "records"
    elif step.startswith("ranker"):
        examples = rank_examples(log, ranker_cfg.history_len, ranker_cfg.num_candidates)
        count = len(examples) if step == "ranker examples" else _in_chunks(
            lambda part: ranker.example_arrays(ranker_cfg, part), examples, chunk)
        unit = "examples"
    else:
        queries = retrieve_examples(log, retriever_cfg.history_len)
        count = len(queries) if step == "retriever examples" else _in_chunks(
            lambda part: retriever.v2_example_arrays(retriever_cfg, log, part, None, 0), queries, chunk)
        unit = "examples"
    seconds = time.perf_counter() - started
    return {"step": step, "engagements": len(log.engagements), "count": count, "unit": unit, "seconds": seconds,
            "per_s": count / max(seconds, 1e-9), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        step, n = args.child.rsplit(":", 1)
        print(json.dumps(run_step(step, int(n), args.preset, args.chunk)))
        return 0
    rows = []
    for n in (int(x) for x in args.engagements.split(",")):
        for step in args.steps.split(","):
            cmd = [sys.executable, "-m", "bench.examples", "--child", f"{step}:{n}", "--preset", args.preset,
                   "--chunk", str(args.chunk)]
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0:
                print(result.stderr[-3000:], file=sys.stderr)
                return result.returncode
            r = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append([f"{r['engagements']:,}", r["step"], f"{r['count']:,} {r['unit']}", r["seconds"],
                         f"{r['per_s']:,.0f}", f"{r['peak_rss_mb']:,.0f}"])
    from bench.common import print_table
    print_table(f"Example building ({args.preset} preset configs, arrays in chunks of {args.chunk})",
                ["engagements", "step", "built", "seconds", "per s", "peak RSS MB"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
