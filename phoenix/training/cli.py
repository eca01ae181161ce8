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
    parser.add_argument("--batch-size", type=int, default=None, help="default: the model's (256 ranker, 128 retriever)")
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--test-fraction", type=float, default=0.2, help="held-out share of the timeline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mesh", default="", help="train on a device mesh, e.g. data=4 or data=2,model=2 "
                                                   "(docs/scaling.md; default: one device, or all of a multi-process job's)")
    parser.add_argument("--coordinator", default="", help="HOST:PORT of process 0: train in several processes "
                                                          "with jax.distributed (docs/scaling.md)")
    parser.add_argument("--num-processes", type=int, default=1, help="processes in the job (with --coordinator)")
    parser.add_argument("--process-id", type=int, default=0, help="this process's index, 0 .. num-processes - 1")
    parser.add_argument("--log-level", default="INFO")


def run(args: argparse.Namespace) -> int:
    logs.setup("train", args.log_level, json_lines=False)
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every file it touches
    from phoenix.training import distributed, mesh as mesh_lib
    if args.num_processes != 1 and not args.coordinator:
        raise SystemExit("--num-processes needs --coordinator (process 0's HOST:PORT)")
    if args.coordinator:  # before anything else touches JAX
        distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    import jax

    from phoenix import checkpoints
    from phoenix.evaluation.report import ranker_table, retriever_table
    from phoenix.server_models import preset_configs
    from phoenix.training import ranker, retriever
    from phoenix.training.sources import load_event_log

    bootstrap = args.kafka_bootstrap or (None if args.events_file else foryou_config.KAFKA_SETTING.default)
    started = time.monotonic()
    events = distributed.share(load_event_log(args.events_file, bootstrap))  # this process's users
    print(f"read {len(events.post_author)} posts, {len(events.engagements)} engagements, "
          f"{len(events.served)} served events in {time.monotonic() - started:.1f}s", flush=True)
    ranker_cfg, retriever_cfg = preset_configs(args.preset)
    module, cfg, table = ((ranker, ranker_cfg, ranker_table) if args.model == "ranker"
                          else (retriever, retriever_cfg, retriever_table))
    defaults = module.default_settings(args.steps)
    settings = dataclasses.replace(
        defaults, seed=args.seed, test_fraction=args.test_fraction,
        batch_size=args.batch_size or defaults.batch_size,
        learning_rate=args.learning_rate or defaults.learning_rate,
    )
    mesh_text = args.mesh or (f"data={jax.device_count()}" if distributed.multi_process() else "")
    with contextlib.ExitStack() as stack:
        if mesh_text:
            stack.enter_context(mesh_lib.use_mesh(mesh_lib.make_mesh(mesh_lib.parse_mesh(mesh_text))))
        params, metrics = module.train(events, cfg, steps=args.steps, settings=settings)
        # Saved from the arrays sharded on the mesh (orbax; loads on any mesh shape).
        ref = checkpoints.save(args.checkpoint_dir, args.model, args.steps, mesh_lib.place_params(params), cfg, metrics)
    print("\n" + table(metrics["eval"]) + "\n")
    print(f"saved {ref.checkpoint_id} to {ref.path} ({time.monotonic() - started:.0f}s in all)", flush=True)
    return 0
