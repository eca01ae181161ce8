"""Checks of a gRPC server as a raw client sees it: corrupt request bytes and reflection v1.
Used on in-process servers (tests/foundation/test_grpc_server.py) and on the real service
processes (tests/home_mixer/test_fault_injection.py). And an in-process server whose one method
sleeps, for the admission tests."""
from __future__ import annotations

import asyncio
import contextlib

import grpc
from grpc_reflection.v1alpha import reflection_pb2

from foryou.admission import AdmissionLimits
from foryou.grpc_server import ServiceServer


# Each a different way for bytes not to be a message: a bad tag, a truncated varint, a length
# past the end, a wire type that does not exist, and (built per message) a string that is not
# UTF-8.
BAD_BYTES = {
    "bad_tag": b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    "truncated_varint": b"\x08\xff",
    "length_past_end": b"\x0a\x7fab",
    "invalid_wire_type": b"\x0f",
}


def bad_utf8_for(message_class) -> bytes | None:
    """A string field of `message_class` holding invalid UTF-8, or None if it has none."""
    for field in message_class.DESCRIPTOR.fields:
        if field.type == field.TYPE_STRING and not getattr(field, "is_repeated", False):
            return bytes([(field.number << 3) | 2, 2]) + b"\xff\xfe"
    return None


CASES = (*BAD_BYTES, "invalid_utf8")


async def assert_bad_bytes_refused(channel, method: str, message_class, only: str | None = None) -> None:
    """Every case (or `only` that one) is INVALID_ARGUMENT naming the expected message."""
    cases = dict(BAD_BYTES)
    utf8 = bad_utf8_for(message_class)
    if utf8 is not None:
        cases["invalid_utf8"] = utf8
    if only is not None:
        cases = {only: cases[only]} if only in cases else {}
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    for case, raw in cases.items():
        try:
            await call(raw, timeout=10)
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, case, err.code(), err.details())
            assert message_class.DESCRIPTOR.full_name in err.details(), (method, case, err.details())
            assert "<class" not in err.details() and "Error" not in err.details(), err.details()
        else:
            raise AssertionError(f"{method} accepted corrupt bytes ({case})")


async def list_services(channel, version: str = "v1") -> list[str]:
    call = channel.stream_stream(f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                                 request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    async for response in call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10):
        return [s.name for s in response.list_services_response.service]
    return []




@contextlib.asynccontextmanager
async def sleeping_server(service: str, seconds: float, admission: AdmissionLimits = AdmissionLimits()):
    """A ServiceServer named `service` whose one method, /test.Sleep/Sleep, takes `seconds`;
    yields a raw (bytes in, bytes out) callable of it."""
    async def sleep(request: bytes, context) -> bytes:
        await asyncio.sleep(seconds)
        return b""
    server = ServiceServer(service, [], admission=admission)
    server.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "test.Sleep", {"Sleep": grpc.unary_unary_rpc_method_handler(sleep)}),))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            yield channel.unary_unary("/test.Sleep/Sleep", request_serializer=None, response_deserializer=None)
    finally:
        await server.stop(0)
