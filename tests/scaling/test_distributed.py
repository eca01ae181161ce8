"""Training in several processes (phoenix/training/distributed.py, docs/scaling.md): each
process keeps its own users' events; two `foryou train` processes joined by jax.distributed on
loopback train together and write one checkpoint."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import pytest

from foryou.broker import free_port
from foryou.event_file import write_events
from phoenix import checkpoints
from phoenix.training import distributed
from phoenix.training.data import collect
from tests.scaling import mesh_world

pytestmark = pytest.mark.slow  # trains or starts stacks: scheduled first (tests/conftest.py)


def test_each_process_keeps_its_own_users_and_every_post():
    log = collect(mesh_world.events())
    shares = [distributed.share(log, i, 3) for i in range(3)]
    users = [set(s.engagements.user.tolist()) | set(s.served.user.tolist()) for s in shares]
    assert all(users) and not (users[0] & users[1] or users[0] & users[2] or users[1] & users[2])
    assert sum(len(s.engagements) for s in shares) == len(log.engagements)
    assert sum(len(s.served) for s in shares) == len(log.served)
    assert all(s.posts is log.posts for s in shares)
    assert [len(s.engagements) for s in shares] == [len(distributed.share(log, i, 3).engagements) for i in range(3)]
    assert distributed.share(log, 0, 1) is log


def test_two_processes_train_together_and_write_one_checkpoint(tmp_path):
    events_file, ckpt = tmp_path / "world.events", tmp_path / "ckpt"
    write_events(events_file, mesh_world.events())
    coordinator = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"JAX_PLATFORMS": "cpu"}
    procs = [subprocess.Popen([sys.executable, "-m", "foryou.cli", "train", "ranker", "--events-file", str(events_file),
                               "--checkpoint-dir", str(ckpt), "--steps", "3", "--preset", "tiny", "--batch-size", "32",
                               "--coordinator", coordinator, "--num-processes", "2", "--process-id", str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(2)]
    try:
        outputs = [p.communicate(timeout=1500) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
        assert "[ranker] step 3/3 loss" in err, err[-2000:]
    engagements = [int(re.search(r"posts, (\d+) engagements", out).group(1)) for out, _ in outputs]
    assert sum(engagements) == len(collect(mesh_world.events()).engagements) and min(engagements) > 0
    assert sorted(p.name for p in (ckpt / "ranker").iterdir()) == ["3"]  # one checkpoint, no leftovers
    _, params = checkpoints.load(checkpoints.latest(ckpt, "ranker"))
    assert params
