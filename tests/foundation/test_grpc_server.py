"""The server factory as an external client sees it: health (NOT_SERVING, then SERVING) and
reflection listing the service."""
from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from foryou.grpc_server import ServiceServer
import pytest

from tests.reliability.grpc_checks import CASES, assert_bad_bytes_refused, list_services
from foryou_protos import thunder_pb2_grpc

SERVICE = "foryou.ThunderService"


async def _list_services(channel) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    async for response in responses:
        return [s.name for s in response.list_services_response.service]
    return []


async def test_health_goes_from_not_serving_to_serving_and_reflection_lists_service():
    server = ServiceServer("thunder", [SERVICE])
    thunder_pb2_grpc.add_ThunderServiceServicer_to_server(thunder_pb2_grpc.ThunderServiceServicer(), server.server)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", SERVICE):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
            await server.set_serving()
            for service in ("", SERVICE):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            services = await _list_services(channel)
            assert SERVICE in services
            assert "grpc.health.v1.Health" in services
    finally:
        await server.stop(0)


async def test_binding_a_taken_port_fails_clearly():
    first = await ServiceServer("a", [SERVICE]).start()
    try:
        second = ServiceServer("b", [SERVICE], port=first.port)
        try:
            await second.start()
        except RuntimeError as exc:
            assert "cannot bind" in str(exc)
        else:  # pragma: no cover - must not happen
            await second.stop(0)
            raise AssertionError("second server bound a taken port")
    finally:
        await first.stop(0)


@pytest.mark.parametrize("case", CASES)
async def test_corrupt_bytes_are_invalid_argument_and_reflection_v1_lists_every_service(case):
    from foryou_protos import thunder_pb2
    from thunder.service import ThunderServicer, add_to_server

    server = ServiceServer("thunder", [SERVICE])
    add_to_server(ThunderServicer(handlers=None), server.server)  # decoding fails before any handler
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            await assert_bad_bytes_refused(channel, f"/{SERVICE}/GetPosts", thunder_pb2.GetPostsRequest, case)
            await assert_bad_bytes_refused(channel, f"/{SERVICE}/GetUserContext", thunder_pb2.GetUserContextRequest,
                                           case)
            await assert_bad_bytes_refused(channel, "/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest, case)
            for version in ("v1", "v1alpha"):
                assert set(await list_services(channel, version)) == {
                    SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                    "grpc.reflection.v1.ServerReflection"}
            # A good request still works through the decoding layer.
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        await server.stop(0)
