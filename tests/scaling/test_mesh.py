"""Training on a mesh (phoenix/training/mesh.py, docs/scaling.md): on 4 forced host devices
the same seed and data give the same losses as on one, with the hash tables row-sharded."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from phoenix.training.mesh import parse_mesh


def test_mesh_flag():
    assert parse_mesh("data=4") == {"data": 4, "model": 1}
    assert parse_mesh("data=2,model=2") == {"data": 2, "model": 2}
    with pytest.raises(ValueError):
        parse_mesh("pipe=2")


def test_four_device_mesh_trains_like_one_device_with_sharded_tables():
    script = Path(__file__).with_name("mesh_script.py")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["devices"] == 4
    assert len(out["one"]) == len(out["four"]) >= 6
    for a, b in zip(out["one"], out["four"]):
        assert abs(a - b) <= 1e-3 * max(1.0, abs(a)), (out["one"], out["four"])
    assert out["four_tables"] and all("'data'" in spec and n == 4
                                      for _, spec, n in out["four_tables"]), out["four_tables"]
    assert all(n == 1 for _, _, n in out["one_tables"])
