"""The README's main-job command, `foryou demo`, runs end to end (a smaller world and fewer
training steps than its defaults, to keep the suite fast) and leaves nothing running."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from foryou.broker import port_in_use

pytestmark = pytest.mark.slow


def test_demo_prints_ranked_feeds_and_stops_the_stack(tmp_path):
    env = {**os.environ, "FORYOU_STATE_DIR": str(tmp_path / "state"), "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-m", "foryou.cli", "demo", "--users", "100", "--ranker-steps", "30",
         "--retriever-steps", "30", "--feeds", "2", "--log-dir", str(tmp_path / "logs")],
        env=env, capture_output=True, text=True, timeout=400)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for stage in ("[1/4]", "[2/4]", "[3/4]", "[4/4]", "demo finished"):
        assert stage in out
    assert "trained ranker" in out and "hot-reloaded ranker-30+retriever-30" in out
    assert len(re.findall(r"^For You feed of @\w+ \(user \d+\)", out, re.M)) == 2
    rows = re.findall(r"^\s+\d+\s+@\w+\s+(in|out)\s+-?\d+\.\d+\s+\w+ \d\.\d\d", out, re.M)
    assert len(rows) >= 10 and "in" in rows
    assert len(re.findall(r"hidden taste: loves", out)) == 2
    assert "degraded" not in out
    # two posts published after training, on the first viewer's loved and least liked topics
    assert "posted twice after training" in out
    assert len(re.findall(r"^    #\w+ \((loved|least liked) topic\): ranked \d+ of \d+ candidates, favorite 0\.\d+; "
                          r"(in the feed at \d+|not in the)", out, re.M)) == 2
    # stopped: every address it printed is free again, and the state file is gone
    addresses = re.findall(r"^(?:kafka|thunder|phoenix|home-mixer)\s+(\S+:\d+)$", out, re.M)
    assert len(addresses) == 4
    for address in addresses:
        host, port = address.rsplit(":", 1)
        assert not port_in_use(host, int(port))
    assert not (tmp_path / "state" / "stack.json").exists()
