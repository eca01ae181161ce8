"""`foryou train ranker|retriever`: train on the topics (or an event file), print progress and
the held-out comparison with the baselines, save an orbax checkpoint Phoenix can hot-reload."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import time

from pydantic import Field

from foryou import config as foryou_config
from foryou import logs
from phoenix.settings import Preset

log = logging.getLogger(__name__)


class TrainSettings(foryou_config.Settings):
    model_config = foryou_config.prefixed("train")
    events_file: str | None = Field(None, description="train on this event file (foryou/event_file.py format) "
                                                       "instead of Kafka")
    kafka_bootstrap: str = foryou_config.kafka_bootstrap_field()
    checkpoint_dir: str = Field(description="save DIR/<model>/<step>/ here")
    steps: int = Field(400, description="optimisation steps")
    preset: Preset = Field("small", description="model sizes (small: tiny model, roomy hash tables; quick on a "
                                                "laptop CPU; v2 inputs except tiny and small-v1, the ids-only v1 models)")
    batch_size: int | None = Field(None, description="default: the model's (256 ranker, 128 retriever)")
    learning_rate: float | None = Field(None, description="default: the model's")
    test_fraction: float = Field(0.2, description="held-out share of the timeline (newest events)")
    seed: int = Field(0, description="seed of the initialisation and the batches")
    mesh: str = Field("", description="train on a device mesh, e.g. data=4 or data=2,model=2 (docs/scaling.md; "
                                      "'': one device)")
    log_level: foryou_config.LogLevel = foryou_config.log_level_field()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", choices=("ranker", "retriever"), help="which model to train")
    foryou_config.add_settings(parser, TrainSettings)


def run(args: argparse.Namespace) -> int:
    args = foryou_config.resolve(args, TrainSettings)
    logs.setup("train", args.log_level, json_lines=False)
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every file it touches
    from phoenix import checkpoints
    from phoenix.evaluation.report import ranker_table, retriever_table
    from phoenix.server_models import preset_configs
    from phoenix.training import ranker, retriever
    from phoenix.training.sources import load_event_log

    bootstrap = None if args.events_file else args.kafka_bootstrap
    started = time.monotonic()
    events = load_event_log(args.events_file, bootstrap)
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
    from phoenix.training import mesh as mesh_lib
    with contextlib.ExitStack() as stack:
        if args.mesh:
            stack.enter_context(mesh_lib.use_mesh(mesh_lib.make_mesh(mesh_lib.parse_mesh(args.mesh))))
        params, metrics = module.train(events, cfg, steps=args.steps, settings=settings)
    params = mesh_lib.gather(params)
    ref = checkpoints.save(args.checkpoint_dir, args.model, args.steps, params, cfg, metrics)
    print("\n" + table(metrics["eval"]) + "\n")
    print(f"saved {ref.checkpoint_id} to {ref.path} ({time.monotonic() - started:.0f}s in all)", flush=True)
    return 0
