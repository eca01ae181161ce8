"""Training throughput: examples/s and step time of the ranker and the retriever, on one device
and on a mesh of N devices (docs/scaling.md), the same training loop (phoenix/training/loop.py).

    python -m foryou.cli bench train [--presets demo,serving] [--models ranker,retriever]
                                     [--devices 1,4] [--steps 12] [--users 300]
                                     [--batch-size N | PRESET=N,...]

Each device count runs in its own process: on CPU the N devices are forced host devices
(XLA_FLAGS=--xla_force_host_platform_device_count=N, set before JAX starts), which share the
machine's cores, so the CPU rows measure the mesh's overhead, not a speed-up. On a machine
with an accelerator the default backend's devices are used when there are N of them (else the
row says cpu). The first steps (compiles) are left out of the timings.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

WARMUP_STEPS = 2  # the first step compiles; the second can still meet lazy work


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou bench train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="demo,serving")
    parser.add_argument("--models", default="ranker,retriever")
    parser.add_argument("--devices", default="1,4", help="device counts, one process each")
    parser.add_argument("--steps", type=int, default=12, help="steps per row, the first two not timed")
    parser.add_argument("--users", type=int, default=300, help="synthetic world size")
    parser.add_argument("--batch-size", default="0", help="N for every row, or PRESET=N,... per preset "
                        "(e.g. serving=32, where the training default does not fit in memory); default: the "
                        "model's training default")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(args)
    rows = []
    for n in (int(d) for d in args.devices.split(",")):
        env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} "
                                         f"--xla_force_host_platform_device_count={n}".strip())
        cmd = [sys.executable, "-m", "bench.train", "--child", str(n), "--presets", args.presets,
               "--models", args.models, "--steps", str(args.steps), "--users", str(args.users),
               "--batch-size", args.batch_size]
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stderr[-3000:], file=sys.stderr)
            return result.returncode
        rows += [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    from bench.common import print_table
    print_table(f"Training throughput ({args.steps - WARMUP_STEPS} timed steps per row, "
                f"{args.users}-user synthetic world)",
                ["model", "preset", "devices", "platform", "batch", "examples/s", "step p50 ms", "step p99 ms"],
                [[r["model"], r["preset"], r["devices"], r["platform"], r["batch"], r["examples_per_s"],
                  r["p50_ms"], r["p99_ms"]] for r in rows])
    return 0


def child(args: argparse.Namespace) -> int:
    """One device count: every (model, preset) row, one JSON line each."""
    import jax

    from foryou.world import WorldConfig, generate_world
    from phoenix.training import mesh as mesh_lib
    from phoenix.training.data import collect

    devices = jax.devices() if jax.device_count() >= args.child else jax.devices("cpu")
    mesh = mesh_lib.make_mesh({"data": args.child, "model": 1}, devices)
    log = collect(generate_world(WorldConfig(num_users=args.users, days=2, seed=0)).events())
    for model in args.models.split(","):
        for preset in args.presets.split(","):
            with mesh_lib.use_mesh(mesh):
                times, batch = train_steps(model, preset, log, args.steps, batch_size_for(args.batch_size, preset))
            print(json.dumps(row(model, preset, args.child, devices[0].platform, batch, times)), flush=True)
    return 0


def batch_size_for(spec: str, preset: str) -> int:
    """--batch-size "32" (every preset) or "serving=32,demo=256" (the others: 0, the default)."""
    if "=" not in spec:
        return int(spec)
    sizes = dict(part.split("=") for part in spec.split(","))
    return int(sizes.get(preset, 0))


def train_steps(model: str, preset: str, log, steps: int, batch_size: int) -> tuple[list[float], int]:
    """Seconds between consecutive steps' progress lines (each waits for its step's loss)."""
    import dataclasses

    from phoenix.server_models import preset_configs
    from phoenix.training import ranker, retriever
    from phoenix.training.data import features_for, fit_codebook_for
    from phoenix.losses import ranker_init_params, ranker_loss
    from phoenix.training.loop import fit, fresh_params

    ranker_cfg, retriever_cfg = preset_configs(preset)
    module, cfg = (ranker, ranker_cfg) if model == "ranker" else (retriever, retriever_cfg)
    defaults = module.default_settings(steps)
    settings = dataclasses.replace(defaults, steps=steps, log_every=1, validation_fraction=0.0,
                                   batch_size=batch_size or defaults.batch_size)
    stamps: list[float] = []
    progress = lambda line: stamps.append(time.perf_counter()) if " step " in line else None  # noqa: E731
    codebook = fit_codebook_for(log, cfg.inputs, settings.test_fraction, settings.seed)
    features = features_for(cfg, log, codebook)
    if model == "ranker":
        split = ranker.ranker_split(log, cfg, settings.test_fraction)
        data = ranker.example_arrays(cfg, split.train, features)

        def loss_fn(p, b):
            return ranker_loss(p, cfg, b.batch, b.labels, b.dwell, b.mask)
        _, summary = fit(loss_fn, fresh_params(ranker_init_params(cfg, 0)), data, len(split.train), settings, model,
                         progress)
    else:
        split = retriever.retriever_split(log, cfg, settings.test_fraction)
        if retriever.is_v2(cfg):
            _, summary = retriever._fit_v2(log, split.train, cfg, settings, retriever.TEMPERATURE, model, progress,
                                           features)
        else:
            _, summary = retriever._fit_params(split.train, cfg, settings, retriever.TEMPERATURE, model, progress)
    times = [b - a for a, b in zip(stamps, stamps[1:])][WARMUP_STEPS - 1:]
    return times, summary["batch_size"]  # the model's batch, or all the examples when fewer


def row(model: str, preset: str, devices: int, platform: str, batch: int, times: list[float]) -> dict:
    from bench.common import percentiles_ms
    p50, p99 = percentiles_ms(times)
    return {"model": model, "preset": preset, "devices": devices, "platform": platform, "batch": batch,
            "examples_per_s": batch * len(times) / sum(times), "p50_ms": p50, "p99_ms": p99}


if __name__ == "__main__":
    sys.exit(main())
