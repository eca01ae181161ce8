"""Training on a mesh (phoenix/training/mesh.py, docs/scaling.md): on 4 forced host devices
the same seed and data give the same losses as on one, with the hash tables row-sharded; the
checkpoint saved on the 4 devices serves from a 1-device Phoenix with the same predictions."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from phoenix.server_models import load_models
from phoenix.training.mesh import parse_mesh
from tests.scaling import mesh_world

pytestmark = pytest.mark.slow  # trains or starts stacks: scheduled first (tests/conftest.py)


def test_mesh_flag():
    assert parse_mesh("data=4") == {"data": 4, "model": 1}
    assert parse_mesh("data=2,model=2") == {"data": 2, "model": 2}
    with pytest.raises(ValueError):
        parse_mesh("pipe=2")


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    """The script's output (losses, shardings, scores) and its checkpoint directory."""
    ckpt = tmp_path_factory.mktemp("mesh-ckpt")
    script = Path(__file__).with_name("mesh_script.py")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    result = subprocess.run([sys.executable, str(script), str(ckpt)], capture_output=True, text=True,
                            timeout=1500, env=env)  # a guard against a hang; a loaded 2-core host is slow
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), ckpt


def test_four_device_mesh_trains_like_one_device_with_sharded_tables(four_devices):
    out, _ = four_devices
    assert out["devices"] == 4
    assert len(out["one"]) == len(out["four"]) >= 6
    for a, b in zip(out["one"], out["four"]):
        assert abs(a - b) <= 1e-3 * max(1.0, abs(a)), (out["one"], out["four"])
    assert out["four_tables"] and all("'data'" in spec and n == 4
                                      for _, spec, n in out["four_tables"]), out["four_tables"]
    assert all(n == 1 for _, _, n in out["one_tables"])


def test_checkpoint_saved_on_four_devices_serves_on_one_with_the_same_predictions(four_devices):
    out, ckpt = four_devices
    # orbax wrote the sharded arrays themselves (their sharding is in the checkpoint's metadata)
    assert out["saved_tables"] and all("data" in sharding for _, sharding in out["saved_tables"]), out["saved_tables"]
    assert len(jax.devices()) == 1
    models = load_models("tiny", ckpt)  # what the Phoenix server loads (phoenix/server.py)
    assert models.ranker_ref.checkpoint_id == "ranker-6"
    runtime = models.ranker
    assert all(len(leaf.devices()) == 1 for leaf in jax.tree.leaves(runtime.params))
    served = np.concatenate([runtime.rank(ex.user_id, ex.history, ex.candidates, now_ms=ex.time_ms)
                             for ex in mesh_world.requests(runtime.config)])
    expected = np.asarray(out["scores"], np.float32)
    assert served.shape == expected.shape and served.shape[0] > mesh_world.NUM_REQUESTS
    np.testing.assert_allclose(served, expected, rtol=1e-4, atol=1e-5)
    assert np.ptp(expected[:, 0]) > 0  # the scores differ between candidates: the comparison can fail
