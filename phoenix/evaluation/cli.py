"""`foryou eval`: evaluate the newest ranker and retriever checkpoints of a directory on the
held-out part of the events, next to the random / most-popular / most-recent baselines.
Prints the tables and writes them (eval.md), the numbers (eval.json) and a plot (eval.png)."""
from __future__ import annotations

import argparse
import logging
import json
from pathlib import Path

from foryou import config as foryou_config
from foryou import logs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint-dir", required=True, help="evaluate the newest checkpoints found here")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--events-file", help="an event file (foryou/event_file.py format)")
    source.add_argument("--kafka-bootstrap", help="read all topics of this Kafka to their end "
                                                  f"(default when no --events-file: {foryou_config.KAFKA_SETTING.default})")
    parser.add_argument("--out", required=True, help="directory for eval.md, eval.json and eval.png")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="held-out share of the timeline")
    parser.add_argument("--log-level", default="INFO")


def evaluate_checkpoints(checkpoint_dir: str, events, test_fraction: float = 0.2) -> dict:
    """{"ranker": evaluation, "retriever": evaluation} for the checkpoints that exist."""
    from phoenix import checkpoints
    from phoenix.index import Freshness
    from phoenix.training import ranker, retriever

    results = {}
    ref = checkpoints.latest(checkpoint_dir, checkpoints.RANKER)
    if ref is not None:
        cfg, params = checkpoints.load(ref)
        results["ranker"] = {"checkpoint": ref.checkpoint_id,
                             **ranker.evaluate(params, cfg, ranker.ranker_split(events, cfg, test_fraction),
                                               codebook=checkpoints.load_codebook(ref))}
    ref = checkpoints.latest(checkpoint_dir, checkpoints.RETRIEVER)
    if ref is not None:
        cfg, params = checkpoints.load(ref)
        split = retriever.retriever_split(events, cfg, test_fraction)
        freshness = Freshness.from_dict(checkpoints.load_scoring(ref))  # as Phoenix serves it
        results["retriever"] = {"checkpoint": ref.checkpoint_id,
                                **retriever.evaluate(params, cfg, events, split, freshness=freshness,
                                                     codebook=checkpoints.load_codebook(ref))}
    return results


def write_report(results: dict, out: str | Path) -> str:
    """Write eval.md / eval.json / eval.png into `out`; returns the text of the tables."""
    from phoenix.evaluation.report import plot, ranker_table, retriever_table

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    if "ranker" in results:
        parts.append(f"{results['ranker']['checkpoint']}: " + ranker_table(results["ranker"]))
    if "retriever" in results:
        parts.append(f"{results['retriever']['checkpoint']}: " + retriever_table(results["retriever"]))
    text = "\n\n".join(parts) + "\n"
    (out / "eval.md").write_text(text)
    (out / "eval.json").write_text(json.dumps(results, indent=2, default=float))
    plot(results.get("ranker"), results.get("retriever"), out / "eval.png")
    return text


def run(args: argparse.Namespace) -> int:
    logs.setup("eval", args.log_level, json_lines=False)
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every file it touches
    from phoenix.training.sources import load_event_log

    bootstrap = args.kafka_bootstrap or (None if args.events_file else foryou_config.KAFKA_SETTING.default)
    events = load_event_log(args.events_file, bootstrap)
    results = evaluate_checkpoints(args.checkpoint_dir, events, args.test_fraction)
    if not results:
        print(f"no ranker or retriever checkpoint under {args.checkpoint_dir}")
        return 1
    print(write_report(results, args.out))
    print(f"wrote {Path(args.out) / 'eval.md'}, eval.json and eval.png")
    return 0
