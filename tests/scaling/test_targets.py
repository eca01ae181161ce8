"""How HomeMixer reads a dependency address naming replicas, and when a replicated dependency
counts as not serving (home_mixer/clients.py, docs/scaling.md)."""
from __future__ import annotations

import json

import pytest

from foryou.stack import parse_replicas
from home_mixer.clients import PhoenixClient, Target, service_config


def test_address_lists_become_one_balanced_ipv4_target():
    assert Target.parse("localhost:1,127.0.0.2:2") == Target("ipv4:127.0.0.1:1,127.0.0.2:2",
                                                              ("localhost:1", "127.0.0.2:2"))
    assert Target.parse("thunder:50052") == Target("thunder:50052")
    assert Target.parse("dns:///thunder:50052") == Target("dns:///thunder:50052")
    with pytest.raises(ValueError, match="host:port"):
        Target.parse("127.0.0.1:1,b")


def test_service_config_balances_over_healthy_replicas_and_retries_unavailable():
    cfg = json.loads(service_config("foryou.ThunderService"))
    assert cfg["loadBalancingConfig"] == [{"round_robin": {}}]
    assert cfg["healthCheckConfig"] == {"serviceName": "foryou.ThunderService"}
    assert cfg["methodConfig"][0]["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


async def test_a_replicated_dependency_is_down_only_when_no_replica_serves():
    client = PhoenixClient("127.0.0.1:1,127.0.0.1:2")
    try:
        a, b = client.target.replicas
        client._replica_state(a, True)
        client._replica_state(b, False)
        assert client.breaker.state != "not_serving"
        client._replica_state(a, None)           # a died: b says NOT_SERVING, nobody serves
        assert client.breaker.state == "not_serving"
        client._replica_state(b, True)
        assert client.breaker.state != "not_serving"
    finally:
        await client.close()


def test_replicas_flag():
    assert parse_replicas("thunder=2,phoenix=3") == {"thunder": 2, "phoenix": 3}
    for bad in ("home-mixer=2", "thunder=0", "thunder"):
        with pytest.raises(ValueError):
            parse_replicas(bad)
