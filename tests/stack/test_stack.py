"""The stack's failure path: when one service cannot start, everything already started is
stopped (the happy path, `foryou up` with Ctrl-C, is covered by tests/e2e)."""
from __future__ import annotations

import pytest

from foryou.broker import port_in_use
from foryou.stack import Stack, StackConfig, read_state


async def test_a_service_that_fails_to_start_stops_the_whole_stack(tmp_path, monkeypatch):
    monkeypatch.setenv("FORYOU_STATE_DIR", str(tmp_path))
    # an unknown preset makes `foryou phoenix` exit at argument parsing
    stack = Stack(StackConfig.free_ports(preset="no-such-preset", ready_timeout_s=120))
    with pytest.raises(RuntimeError, match="phoenix not ready"):
        await stack.start()
    assert not stack.broker.running
    for service in stack.services.values():
        assert not service.alive
        host, port = service.address.rsplit(":", 1)
        assert not port_in_use(host, int(port))
    assert read_state() is None  # no state file for a stack that never came up
