"""`foryou train ranker|retriever`: train on the topics (or an event file), print progress and
the held-out comparison with the baselines, save an orbax checkpoint Phoenix can hot-reload."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import time

from foryou import config as foryou_config
from foryou import logs

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", choices=("ranker", "retriever"), help="which model to train")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--events-file", help="an event file (foryou/event_file.py format)")
    source.add_argument("--kafka-bootstrap", help="read all topics of this Kafka to their end "
                                                  f"(default when no --events-file: {foryou_config.KAFKA_SETTING.default})")
    parser.add_argument("--checkpoint-dir", required=True, help="save DIR/<model>/<step>/ here")
    parser.add_argument("--steps", type=int, default=400, help="optimisation steps (default 400)")
    parser.add_argument("--preset", choices=("tiny", "small", "demo", "serving", "small-v1"), default="small",
                        help="model sizes (default small: tiny model, roomy hash tables; quick on a laptop CPU; "
                             "v2 inputs except tiny and small-v1, the ids-only v1 models)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the model's (ranker 256; retriever v1 128 engagements, v2 32 windows "
                             "of history_len + 1 engagements)")
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--test-fraction", type=float, default=0.2, help="held-out share of the timeline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mesh", default="", help="train on a device mesh, e.g. data=4 or data=2,model=2 "
                                                   "(docs/scaling.md; default: one device)")
    parser.add_argument("--positives", default="",
                        help="retriever (v2): comma-separated actions whose engagements it learns to retrieve "
                             "(default favorite; e.g. favorite,click where every engagement is a choice, as in "
                             "MovieLens)")
    parser.add_argument("--user-pooling", choices=("mean", "last"), default=None,
                        help="retriever: the user is the mean of the tower's outputs (the presets) or the last "
                             "position's; 'last' trains on every prefix of each history (sequential, as SASRec; "
                             "docs/phoenix.md)")
    parser.add_argument("--log-level", default="INFO")


def run(args: argparse.Namespace) -> int:
    logs.setup("train", args.log_level, json_lines=False)
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every file it touches
    from phoenix import checkpoints
    from phoenix.evaluation.report import full_report, ranker_table, retriever_table
    from phoenix.server_models import preset_configs
    from phoenix.training import ranker, retriever
    from phoenix.training.sources import load_event_log

    bootstrap = args.kafka_bootstrap or (None if args.events_file else foryou_config.KAFKA_SETTING.default)
    started = time.monotonic()
    events = load_event_log(args.events_file, bootstrap)
    print(f"read {len(events.post_author)} posts, {len(events.engagements)} engagements, "
          f"{len(events.served)} served events in {time.monotonic() - started:.1f}s", flush=True)
    ranker_cfg, retriever_cfg = preset_configs(args.preset)
    if args.user_pooling:
        retriever_cfg = dataclasses.replace(retriever_cfg, user_pooling=args.user_pooling)
    module, cfg, table = ((ranker, ranker_cfg, ranker_table) if args.model == "ranker"
                          else (retriever, retriever_cfg, retriever_table))
    defaults = (retriever.default_settings(args.steps, cfg) if args.model == "retriever"
                else module.default_settings(args.steps))
    settings = dataclasses.replace(
        defaults, seed=args.seed, test_fraction=args.test_fraction,
        batch_size=args.batch_size or defaults.batch_size,
        learning_rate=args.learning_rate or defaults.learning_rate,
    )
    from phoenix.training import mesh as mesh_lib
    with contextlib.ExitStack() as stack:
        if args.mesh:
            stack.enter_context(mesh_lib.use_mesh(mesh_lib.make_mesh(mesh_lib.parse_mesh(args.mesh))))
        extra = {"positives": _actions(args.positives)} if args.model == "retriever" and args.positives else {}
        params, metrics = module.train(events, cfg, steps=args.steps, settings=settings, **extra)
    params = mesh_lib.gather(params)
    ref = checkpoints.save(args.checkpoint_dir, args.model, args.steps, params, cfg, metrics)
    if args.model == "retriever":  # the same tables as `foryou eval`
        print("\n" + full_report({"retriever": {"checkpoint": ref.checkpoint_id, **metrics["eval"]}}) + "\n")
    else:
        print("\n" + table(metrics["eval"]) + "\n")
    print(f"saved {ref.checkpoint_id} to {ref.path} ({time.monotonic() - started:.0f}s in all)", flush=True)
    return 0


def _actions(names: str) -> frozenset[int]:
    from foryou_protos import common_pb2

    out = set()
    for name in filter(None, (n.strip() for n in names.split(","))):
        try:
            out.add(common_pb2.Action.Value(name.upper()))
        except ValueError:
            raise SystemExit(f"--positives: unknown action {name!r}") from None
    return frozenset(out)
