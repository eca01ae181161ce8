"""gRPC TLS (foryou/tls.py): a server with a certificate serves TLS only; with client auth on, a
client without a certificate signed by the CA is refused. (The whole stack with mutual TLS on
runs in test_supervised_stack.py.)"""
from __future__ import annotations

import pytest

from tests.durability.certs import write_certificates
from foryou.grpc_server import ServiceServer
from foryou.health import check
from foryou.tls import TlsSettings, channel, server_credentials
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return write_certificates(tmp_path_factory.mktemp("certs"))


def _server_env(certs, client_auth: bool) -> dict[str, str]:
    env = {"FORYOU_TLS_CERT": str(certs / "server.crt"), "FORYOU_TLS_KEY": str(certs / "server.key"),
           "FORYOU_TLS_CA": str(certs / "ca.crt")}
    if client_auth:
        env["FORYOU_TLS_CLIENT_AUTH"] = "1"
    return env


async def _status(address: str, settings: TlsSettings) -> int:
    async with channel(address, settings=settings) as ch:
        try:
            reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=3)
        except Exception:
            return -1
        return reply.status


async def _serving_server(monkeypatch, env: dict[str, str]) -> ServiceServer:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    server = ServiceServer("tls-test", [])
    await server.start()
    await server.set_serving()
    for name in env:
        monkeypatch.delenv(name)  # the clients below choose their own settings
    return server


async def test_tls_server_refuses_plaintext_and_serves_tls(certs, monkeypatch):
    server = await _serving_server(monkeypatch, _server_env(certs, client_auth=False))
    try:
        assert await check(server.address) != SERVING                     # plaintext client
        assert await _status(server.address, TlsSettings(ca_file=str(certs / "ca.crt"))) == SERVING
        assert await _status(server.address, TlsSettings(client_tls=True)) == -1  # unknown CA
    finally:
        await server.stop(0)


async def test_mutual_tls_refuses_clients_without_the_right_certificate(certs, monkeypatch):
    server = await _serving_server(monkeypatch, _server_env(certs, client_auth=True))
    ca = str(certs / "ca.crt")
    try:
        assert await _status(server.address, TlsSettings(ca_file=ca)) == -1          # no client certificate
        rogue = TlsSettings(ca_file=ca, cert_file=str(certs / "rogue.crt"), key_file=str(certs / "rogue.key"))
        assert await _status(server.address, rogue) == -1                            # another CA's
        good = TlsSettings(ca_file=ca, cert_file=str(certs / "client.crt"), key_file=str(certs / "client.key"))
        assert await _status(server.address, good) == SERVING
    finally:
        await server.stop(0)


def test_client_auth_without_a_ca_is_a_clear_error(certs):
    with pytest.raises(ValueError, match="FORYOU_TLS_CA"):
        server_credentials(TlsSettings(cert_file=str(certs / "server.crt"), key_file=str(certs / "server.key"),
                                       client_auth=True))
