"""Run by tests/scaling/test_mesh.py in a fresh process: XLA_FLAGS (4 host devices) must be set
before jax is imported. Trains the tiny ranker a few steps on a trivial and a 4-device mesh from
the same seed and data, saves the 4-device model's checkpoint (orbax, from the sharded arrays)
into argv[1] and scores the shared requests with that model's own forward pass; prints one
JSON line."""
import json
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jax  # noqa: E402
import orbax.checkpoint as ocp  # noqa: E402

from phoenix import checkpoints  # noqa: E402
from phoenix.server_models import preset_configs  # noqa: E402
from phoenix.training import mesh as mesh_lib, ranker  # noqa: E402
from phoenix.losses import ranker_init_params, ranker_loss  # noqa: E402
from phoenix.training.data import collect  # noqa: E402
from phoenix.training.loop import TrainSettings, fit, fresh_params  # noqa: E402
from tests.scaling import mesh_world  # noqa: E402

STEPS = 6
events = mesh_world.events()
cfg, _ = preset_configs("tiny")
settings = TrainSettings(steps=STEPS, batch_size=64, validation_fraction=0.0, log_every=1)
out: dict[str, object] = {"devices": len(jax.devices())}
# The training loop itself (ranker.train adds the held-out evaluation, which the mesh leaves alone)
split = ranker.ranker_split(collect(events), cfg, 0.2)
data = ranker.example_arrays(cfg, split.train)


def loss_fn(p, b):
    return ranker_loss(p, cfg, b.batch, b.labels, b.dwell, b.mask)


for name, shape in (("one", {"data": 1, "model": 1}), ("four", {"data": 4, "model": 1})):
    losses: list[str] = []
    with mesh_lib.use_mesh(mesh_lib.make_mesh(shape)):
        params, summary = fit(loss_fn, fresh_params(ranker_init_params(cfg, 0)), data, len(split.train), settings,
                              "ranker", lambda line: losses.append(line))
        if name == "four":
            ref = checkpoints.save(sys.argv[1], "ranker", STEPS, params, cfg, {"train": summary})
            out["scores"] = ranker.predict(params, cfg, mesh_world.requests(cfg)).tolist()
    out[name] = [float(line.split(" loss ")[1].split()[0]) for line in losses if " loss " in line and "step" in line]
    tables = [(jax.tree_util.keystr(p), str(leaf.sharding.spec), len(leaf.sharding.device_set))
              for p, leaf in jax.tree_util.tree_leaves_with_path(params) if "tables" in jax.tree_util.keystr(p)]
    out[name + "_tables"] = tables
# What orbax recorded: the tables were written as arrays sharded over `data`, not host copies.
saved = ocp.StandardCheckpointer().metadata(ref.path.absolute() / "params").item_metadata.tree
out["saved_tables"] = [(jax.tree_util.keystr(p), str(m.sharding)) for p, m in jax.tree_util.tree_leaves_with_path(saved)
                       if "tables" in jax.tree_util.keystr(p)]
print(json.dumps(out))
sys.stdout.flush()
