"""`foryou eval`: evaluate the newest ranker and retriever checkpoints of a directory on the
held-out part of the events, next to the baselines (random, most-popular, most-recent,
user+item bias, item-kNN, content-only) and, for an exported synthetic world, its oracle.
Prints the tables and writes them (eval.md), the numbers (eval.json) and a plot (eval.png).
docs/evaluation.md says what every number means."""
from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from pydantic import Field

from foryou import config as foryou_config
from foryou import logs
from phoenix.training.cli import TrainSettings


class EvalSettings(foryou_config.Settings):
    model_config = foryou_config.prefixed("eval")
    checkpoint_dir: str = Field(description="evaluate the newest checkpoints found here")
    events_file: str | None = Field(None, description="evaluate on this event file (foryou/event_file.py format) "
                                                       "instead of Kafka")
    kafka_bootstrap: str = foryou_config.kafka_bootstrap_field()
    out: str = Field(description="directory for eval.md, eval.json and eval.png")
    test_fraction: float = foryou_config.same_as(TrainSettings, "test_fraction")  # the split training held out
    oracle: str | None = Field(None, description="true probabilities of a synthetic world (default: "
                                                 "EVENTS_FILE.oracle.npz when it exists; `foryou seed --export` writes it)")
    content: bool = Field(True, description="run the content-only (wordllama) baseline (--no-content: skip it)")
    max_queries: int = Field(3000, description="time-split retrieval queries sampled")
    seed: int = Field(0, description="seed of the query sample and the random baseline")
    log_level: foryou_config.LogLevel = foryou_config.log_level_field()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    foryou_config.add_settings(parser, EvalSettings)


def load_events(events_file: str | None, kafka_bootstrap: str | None):
    """(EventLog, {post id: text}) from an event file or Kafka (read once)."""
    from phoenix.training.sources import load_event_log

    log = load_event_log(events_file, kafka_bootstrap)
    return log, dict(zip(log.posts.ids.tolist(), log.posts.texts))


def make_extras(texts: dict[int, str] | None = None, embed=None, oracle=None, content: bool = True):
    from phoenix.evaluation.evaluate import Extras

    vectors = None
    if content and texts:
        from phoenix.evaluation.content_baseline import ContentVectors, wordllama_embed
        try:
            vectors = ContentVectors(texts, embed or wordllama_embed())
        except ModuleNotFoundError as exc:
            logging.getLogger(__name__).warning("no content baseline: %s", exc)
    return Extras(content=vectors, oracle=oracle)


def evaluate_checkpoints(checkpoint_dir: str, events, test_fraction: float = 0.2, extras=None, seed: int = 0,
                         max_queries: int = 3000) -> dict:
    """{"ranker": evaluation, "retriever": evaluation} for the checkpoints that exist."""
    from phoenix import checkpoints
    from phoenix.actions import NUM_BINARY_ACTIONS
    from phoenix.evaluation.evaluate import Extras, evaluate_ranker, evaluate_retriever
    from phoenix.rerank import Scoring
    from phoenix.training import ranker, retriever, retriever_scoring

    extras = extras or Extras()
    log = ranker.as_log(events)
    results = {}
    ref = checkpoints.latest(checkpoint_dir, checkpoints.RANKER)
    if ref is not None:
        cfg, params = checkpoints.load(ref)
        codebook = checkpoints.load_codebook(ref)  # semantic ids of a v2 model (None for v1)
        split = ranker.ranker_split(log, cfg, test_fraction)
        probs = ranker.predict(params, cfg, split.test, ranker.features_for(cfg, log, codebook))[:, :NUM_BINARY_ACTIONS]
        results["ranker"] = {"checkpoint": ref.checkpoint_id, **evaluate_ranker(probs, log, split, extras, seed)}
    ref = checkpoints.latest(checkpoint_dir, checkpoints.RETRIEVER)
    if ref is not None:
        cfg, params = checkpoints.load(ref)
        split = retriever.retriever_split(log, cfg, test_fraction)
        scoring = Scoring.from_dict(checkpoints.load_scoring(ref))  # as Phoenix serves it
        runtime, corpus, corpus_ids, corpus_authors = retriever_scoring.embedded_corpus(
            params, cfg, log, checkpoints.load_codebook(ref))
        model_fn = retriever_scoring.model_score_fn(runtime, corpus, corpus_ids, corpus_authors, scoring)
        results["retriever"] = {"checkpoint": ref.checkpoint_id, "freshness_weight": scoring.freshness.weight,
                                "affinity_weight": scoring.affinity.weight,
                                **evaluate_retriever(model_fn, log, split, corpus_ids, cfg.history_len, extras,
                                                     seed, max_queries)}
    return results


def write_report(results: dict, out: str | Path) -> str:
    """Write eval.md / eval.json / eval.png into `out`; returns the text of the tables."""
    from phoenix.evaluation.report import full_report, plot

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = full_report(results)
    (out / "eval.md").write_text(text)
    (out / "eval.json").write_text(json.dumps(results, indent=2, default=float))
    plot(results.get("ranker"), results.get("retriever"), out / "eval.png")
    return text


def run(args: argparse.Namespace) -> int:
    args = foryou_config.resolve(args, EvalSettings)
    logs.setup("eval", args.log_level, json_lines=False)
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every file it touches

    bootstrap = None if args.events_file else args.kafka_bootstrap
    log, texts = load_events(args.events_file, bootstrap)
    oracle = None
    oracle_file = args.oracle or (f"{args.events_file}.oracle.npz" if args.events_file else None)
    if oracle_file and os.path.exists(oracle_file):
        from foryou.world import Oracle
        oracle = Oracle.load(oracle_file)
    elif args.oracle:
        print(f"no oracle file {args.oracle}")
        return 2
    extras = make_extras(texts, oracle=oracle, content=args.content)
    results = evaluate_checkpoints(args.checkpoint_dir, log, args.test_fraction, extras, args.seed, args.max_queries)
    if not results:
        print(f"no ranker or retriever checkpoint under {args.checkpoint_dir}")
        return 1
    print(write_report(results, args.out))
    print(f"wrote {Path(args.out) / 'eval.md'}, eval.json and eval.png")
    return 0
