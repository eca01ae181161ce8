"""`foryou train ranker|retriever`: train on the topics (or an event file), print progress and
the held-out comparison with the baselines, save an orbax checkpoint Phoenix can hot-reload."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import time
from typing import Any, Literal

from pydantic import Field

from foryou import config as foryou_config
from foryou import logs
from phoenix.training.presets import DEFAULT_STEPS, RANKER_STEPS, TrainPreset

log = logging.getLogger(__name__)


class TrainSettings(foryou_config.Settings):
    model_config = foryou_config.prefixed("train")
    events_file: str | None = Field(None, description="train on this event file (foryou/event_file.py format) "
                                                       "instead of Kafka")
    kafka_bootstrap: str = foryou_config.kafka_bootstrap_field()
    checkpoint_dir: str = Field(description="save DIR/<model>/<step>/ here")
    steps: int | None = Field(None, description=f"optimisation steps at most (early stopping may end sooner; default: "
                                                f"the preset's: ranker {RANKER_STEPS}, retriever {DEFAULT_STEPS}, movielens "
                                                f"retriever 2000)")
    preset: TrainPreset = Field("small", description="model sizes (small: tiny model, roomy hash tables; quick on a "
                                                     "laptop CPU; v2 inputs except tiny and small-v1, the ids-only v1 "
                                                     "models; movielens: small with the sequential retriever recipe "
                                                     "tuned on MovieLens-100k, phoenix/training/presets.py)")
    batch_size: int | None = Field(None, description="default: the model's (256 ranker, 128 retriever)")
    learning_rate: float | None = Field(None, description="default: the model's")
    weight_decay: float | None = Field(None, description="decoupled weight decay (default: the model's, 0.5 ranker, "
                                                         "1e-4 retriever)")
    dropout: float | None = Field(None, ge=0.0, lt=1.0, description="ranker: input dropout of the transformer while training "
                                                    "(default 0, off; docs/phoenix.md has the measurement)")
    test_fraction: float = Field(0.2, description="held-out share of the timeline (newest events)")
    seed: int = Field(0, description="seed of the initialisation and the batches")
    mesh: str = Field("", description="train on a device mesh, e.g. data=4 or data=2,model=2 (docs/scaling.md; "
                                      "'': one device)")
    positives: str = Field("", description="retriever (v2): comma-separated actions whose engagements it learns to "
                                           "retrieve ('': the preset's, favorite; movielens favorite,click: every "
                                           "rating is a choice)")
    user_pooling: Literal["mean", "last"] | None = Field(
        None, description="retriever: the user is the mean of the tower's outputs (the presets' default) or the last "
                          "position's; 'last' trains on every prefix of each history (sequential, as SASRec; "
                          "docs/phoenix.md)")
    coordinator: str = Field("", description="HOST:PORT of process 0: train in several processes with "
                                             "jax.distributed (docs/scaling.md; '': one process)")
    num_processes: int = Field(1, description="processes in the job (with --coordinator)")
    process_id: int = Field(0, description="this process's index, 0 .. num-processes - 1")
    log_level: foryou_config.LogLevel = foryou_config.log_level_field()


class FollowSettings(foryou_config.Settings):
    """`foryou train MODEL --follow`: continuous training (phoenix/training/follow.py)."""

    model_config = foryou_config.prefixed("train")
    follow: bool = Field(False, description="keep training: follow the topics, and every --interval-s with "
                                            "--min-new-events new events train --round-steps more steps on the "
                                            "last --window-hours and save a checkpoint (Kafka only)")
    interval_s: float = Field(300.0, gt=0, description="with --follow: seconds between checks for a round")
    min_new_events: int = Field(500, ge=1, description="with --follow: new engagement + served events a round "
                                                       "needs, arrived since the last round (of the replay at start: those newer "
                                                       "than the checkpoint's newest)")
    window_hours: float = Field(48.0, gt=0, description="with --follow: train on the events of this many hours "
                                                        "before the newest one")
    round_steps: int = Field(50, ge=1, description="with --follow: optimisation steps a round trains at most "
                                                   "(warm-started from the last checkpoint; early stopping applies)")
    keep_checkpoints: int = Field(3, ge=1, description="with --follow: newest checkpoints of the model kept, "
                                                       "older ones deleted")
    follow_test_fraction: float = Field(0.05, gt=0, lt=1, description="with --follow: held-out share of each "
                                                                      "round's window (newest events; the next "
                                                                      "round trains on them)")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What `foryou train MODEL` trains with, from its settings: the training module
    (phoenix.training.ranker or .retriever), the model config, the step budget, the loop's
    settings and the module's extra keyword arguments."""
    module: Any
    config: Any
    steps: int
    settings: Any  # loop.TrainSettings
    extra: dict


def recipe_of(args: argparse.Namespace) -> Recipe:
    """The recipe of resolved `foryou train` arguments (imports JAX)."""
    from phoenix.training import ranker, retriever
    from phoenix.training.presets import train_recipe

    recipe = train_recipe(args.preset)
    ranker_cfg, retriever_cfg, steps = recipe.ranker, recipe.retriever, args.steps or recipe.steps(args.model)
    if args.user_pooling:
        retriever_cfg = dataclasses.replace(retriever_cfg, user_pooling=args.user_pooling)
    module, cfg = (ranker, ranker_cfg) if args.model == "ranker" else (retriever, retriever_cfg)
    defaults = (retriever.default_settings(steps, cfg) if args.model == "retriever"
                else ranker.default_settings(steps, cfg))
    settings = dataclasses.replace(
        defaults, seed=args.seed, test_fraction=args.test_fraction,
        batch_size=args.batch_size or defaults.batch_size,
        learning_rate=args.learning_rate or defaults.learning_rate,
        weight_decay=defaults.weight_decay if args.weight_decay is None else args.weight_decay,
        dropout=defaults.dropout if args.dropout is None else args.dropout,
    )
    if settings.dropout and args.model != "ranker":
        raise SystemExit("--dropout: the ranker's setting (the retriever has no dropout)")
    positives = _actions(args.positives) if args.positives else None
    extra = recipe.retriever_arguments(positives) if args.model == "retriever" else {}
    return Recipe(module, cfg, steps, settings, extra)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", choices=("ranker", "retriever"), help="which model to train")
    foryou_config.add_settings(parser, TrainSettings)
    foryou_config.add_settings(parser, FollowSettings)


def run(args: argparse.Namespace) -> int:
    args = foryou_config.resolve(args, TrainSettings, FollowSettings)
    logs.setup("train", args.log_level, json_lines=False)
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every file it touches
    from phoenix.training import distributed, mesh as mesh_lib
    if args.num_processes != 1 and not args.coordinator:
        raise SystemExit("--num-processes needs --coordinator (process 0's HOST:PORT)")
    if args.coordinator:  # before anything else touches JAX
        distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    import jax

    from phoenix import checkpoints
    from phoenix.evaluation.report import full_report, ranker_table, retriever_table
    from phoenix.training.sources import load_event_log

    if args.follow:  # continuous training (follow.py): its own loop, one device
        from phoenix.training import follow
        return follow.run(args, recipe_of(args))
    bootstrap = None if args.events_file else args.kafka_bootstrap
    started = time.monotonic()
    events = distributed.share(load_event_log(args.events_file, bootstrap))  # this process's users
    print(f"read {len(events.posts)} posts, {len(events.engagements)} engagements, "
          f"{len(events.served)} served events in {time.monotonic() - started:.1f}s", flush=True)
    recipe = recipe_of(args)
    module, cfg, steps, settings = recipe.module, recipe.config, recipe.steps, recipe.settings
    table = ranker_table if args.model == "ranker" else retriever_table
    mesh_text = args.mesh or (f"data={jax.device_count()}" if distributed.multi_process() else "")
    with contextlib.ExitStack() as stack:
        if mesh_text:
            stack.enter_context(mesh_lib.use_mesh(mesh_lib.make_mesh(mesh_lib.parse_mesh(mesh_text))))
        params, metrics = module.train(events, cfg, steps=steps, settings=settings, **recipe.extra)
        # Saved from the arrays sharded on the mesh (orbax; loads on any mesh shape).
        ref = checkpoints.save(args.checkpoint_dir, args.model, steps, mesh_lib.place_params(params), cfg, metrics)
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
