"""Run by tests/scaling/test_mesh.py in a fresh process: XLA_FLAGS (4 host devices) must be set
before jax is imported. Trains the tiny ranker a few steps on a trivial and a 4-device mesh from
the same seed and data; prints one JSON line."""
import json
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402

from foryou.world import WorldConfig, generate_world  # noqa: E402
from phoenix.server_models import preset_configs  # noqa: E402
from phoenix.training import mesh as mesh_lib, ranker  # noqa: E402
from phoenix.training.loop import TrainSettings  # noqa: E402

world = generate_world(WorldConfig(num_users=60, days=1, impressions_per_user=30, seed=3, now_ms=1_790_000_000_000))
events = list(world.events())
cfg, _ = preset_configs("tiny")
settings = TrainSettings(steps=6, batch_size=64, validation_fraction=0.0, log_every=1)
out: dict[str, object] = {"devices": len(jax.devices())}
for name, shape in (("one", {"data": 1, "model": 1}), ("four", {"data": 4, "model": 1})):
    losses: list[str] = []
    with mesh_lib.use_mesh(mesh_lib.make_mesh(shape)):
        params, metrics = ranker.train(events, cfg, steps=6, settings=settings,
                                       progress=lambda line: losses.append(line))
    out[name] = [float(line.split(" loss ")[1].split()[0]) for line in losses if " loss " in line and "step" in line]
    tables = [(jax.tree_util.keystr(p), str(leaf.sharding.spec), len(leaf.sharding.device_set))
              for p, leaf in jax.tree_util.tree_leaves_with_path(params) if "tables" in jax.tree_util.keystr(p)]
    out[name + "_tables"] = tables
print(json.dumps(out))
sys.stdout.flush()
