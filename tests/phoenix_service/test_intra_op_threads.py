"""Phoenix's `intra_op_threads`: the served process sizes XLA's thread pool before JAX starts,
and ranking on one thread gives the same scores as on every core."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from phoenix import main as phoenix_main
from phoenix.settings import PhoenixSettings, use_intra_op_threads

# Ranks one fixed demo-preset request (1,000 candidates, a 32-post history) and prints the
# predictions, the content rows and the user embedding, with the process's thread count.
_RANK_SCRIPT = """
import json, os
import numpy as np
from phoenix.features import CandidateItem, HistoryItem
from phoenix.server_models import load_models
from foryou import snowflake
models = load_models("demo", None)
now = 1_700_000_000_000
history = [HistoryItem(snowflake.make_id(now - 1000 * i, i), 1000 + i % 60, (1,)) for i in range(32)]
candidates = [CandidateItem(snowflake.make_id(now - 5000 * i, i), 1000 + i % 160) for i in range(1000)]
ranked = models.ranker.rank_many_ranked([(7, history, candidates)], now_ms=now)[0]
user = models.retriever.user_embeddings([7], [history])
print(json.dumps({"predictions": ranked.predictions.tolist(), "content": ranked.content.astype(float).tolist(),
                  "user": user.tolist(), "threads": len(os.listdir("/proc/self/task"))}))
"""


def test_one_thread_is_the_default_and_sets_nproc_zero_leaves_the_environment():
    assert PhoenixSettings().intra_op_threads == 1
    environ = {"NPROC": "8"}
    use_intra_op_threads(0, environ)
    assert environ == {"NPROC": "8"}  # 0: XLA's default, or the operator's own NPROC
    use_intra_op_threads(1, environ)
    assert environ == {"NPROC": "1"}


def test_setting_nproc_after_jax_started_its_client_is_logged(caplog):
    import jax

    jax.devices()  # the CPU client exists from here on: its pool is sized
    use_intra_op_threads(2, {})
    assert "intra_op_threads=2 does not apply" in caplog.text


def test_the_phoenix_service_sets_nproc_before_it_starts_the_server(monkeypatch):
    monkeypatch.delenv("NPROC", raising=False)
    seen = {}

    class Server:
        def __init__(self, settings):
            seen["nproc"] = os.environ.get("NPROC")

        async def start(self):
            raise RuntimeError("stop here")

    monkeypatch.setitem(sys.modules, "phoenix.server", types.SimpleNamespace(PhoenixServer=Server))
    with pytest.raises(RuntimeError, match="stop here"):
        asyncio.run(phoenix_main.serve(PhoenixSettings(intra_op_threads=1)))
    assert seen["nproc"] == "1"


def _rank_in_subprocess(nproc: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NPROC"}
    env["JAX_PLATFORMS"] = "cpu"
    if nproc is not None:
        env["NPROC"] = nproc
    done = subprocess.run([sys.executable, "-c", _RANK_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: XLA's pool has one thread either way")
def test_ranking_on_one_intra_op_thread_gives_the_scores_of_every_core():
    default, one = _rank_in_subprocess(None), _rank_in_subprocess("1")
    assert one["threads"] < default["threads"]  # XLA read NPROC: a smaller pool
    for key in ("predictions", "content", "user"):
        np.testing.assert_allclose(np.array(one[key]), np.array(default[key]), rtol=0, atol=1e-5)
