"""`foryou up --ui`: the stack and the explorer come up together, the explorer reaches the
stack's services, and Ctrl-C stops it with the stack."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from foryou.broker import port_in_use

pytestmark = pytest.mark.slow


def test_up_with_ui_serves_the_explorer_and_stops_it_with_the_stack(tmp_path):
    env = {**os.environ, "FORYOU_STATE_DIR": str(tmp_path / "state"), "JAX_PLATFORMS": "cpu"}
    env.pop("FORYOU_KAFKA_BOOTSTRAP", None)
    out_file = tmp_path / "up.out"
    with open(out_file, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "foryou.cli", "up", "--free-ports", "--preset", "tiny", "--ui",
                                 "--log-dir", str(tmp_path / "logs")], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 240
        while not (found := re.search(r"^explorer\s+(http://\S+/)$", out_file.read_text(), re.M)):
            assert proc.poll() is None, out_file.read_text()
            assert time.monotonic() < deadline, out_file.read_text()
            time.sleep(0.3)
        url = found.group(1)
        with urllib.request.urlopen(url + "model", timeout=60) as reply:
            page = reply.read().decode()
        phoenix = re.search(r"^phoenix\s+(\S+)$", out_file.read_text(), re.M).group(1)
        assert "<th>corpus size</th>" in page and f"Phoenix {phoenix}" in page  # found the stack's Phoenix
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, out_file.read_text()
        host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        assert not port_in_use(host, int(port))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
