"""Client-side health checks: wait until a gRPC server reports SERVING."""
from __future__ import annotations

import asyncio
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from foryou import tls


async def check(address: str, service: str = "", timeout_s: float = 1.0) -> int:
    """One health check; returns the HealthCheckResponse status (UNKNOWN if unreachable)."""
    async with tls.channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.aio.AioRpcError:
            return health_pb2.HealthCheckResponse.UNKNOWN
        return reply.status


async def wait_for_serving(address: str, service: str = "", timeout_s: float = 60.0,
                           is_alive=lambda: True) -> None:
    """Poll until SERVING. Raises TimeoutError after `timeout_s`, or RuntimeError as soon as
    `is_alive()` says the server process has died."""
    deadline = time.monotonic() + timeout_s
    while True:
        if await check(address, service) == health_pb2.HealthCheckResponse.SERVING:
            return
        if not is_alive():
            raise RuntimeError(f"server at {address} exited before becoming SERVING")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{address} was not SERVING within {timeout_s}s")
        await asyncio.sleep(0.1)
