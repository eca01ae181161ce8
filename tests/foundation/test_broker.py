"""Embedded broker start-up failures are clear errors, never hangs."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from foryou.broker import BrokerError, EmbeddedBroker


def test_port_taken_gives_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(BrokerError, match="already in use"):
            EmbeddedBroker(port=port).start()


def test_missing_binary_gives_clear_error(tmp_path):
    with pytest.raises(BrokerError, match="missing or not executable"):
        EmbeddedBroker(binary=str(tmp_path / "no-such-tansu")).start()


def test_binary_override_must_be_executable(tmp_path, monkeypatch):
    monkeypatch.setenv("FORYOU_TANSU_BIN", str(tmp_path / "nope"))
    with pytest.raises(BrokerError, match="FORYOU_TANSU_BIN"):
        EmbeddedBroker().start()


def test_binary_that_exits_immediately_reports_its_output(tmp_path):
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'boom: bad flag' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(BrokerError, match="exited with code 3"):
        EmbeddedBroker(binary=str(fake), startup_timeout_s=5).start()


def test_broker_command_reports_port_in_use():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "foryou.cli", "broker", "--port", str(port)],
                             capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "already in use" in out.stdout


def test_started_broker_accepts_connections_and_stops():
    broker = EmbeddedBroker().start()
    try:
        with socket.create_connection(("127.0.0.1", broker.port), timeout=2):
            pass
        assert broker.running
    finally:
        broker.stop()
    assert not broker.running
