"""A grpc.aio server factory: health checking (NOT_SERVING until the service says it is
ready), server reflection, request metrics, and graceful stop."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from foryou import tls
from foryou.metrics import GRPC_LATENCY, GRPC_REQUESTS

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class _MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts and times unary-unary calls by method and status code."""

    def __init__(self, service: str) -> None:
        self._service = service

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        inner = handler.unary_unary
        service = self._service

        async def timed(request, context):
            start = time.perf_counter()
            code = "OK"
            try:
                return await inner(request, context)
            except Exception:
                code = "ERROR"
                raise
            finally:
                status = context.code() if hasattr(context, "code") else None
                if status is not None and status != grpc.StatusCode.OK:
                    code = getattr(status, "name", str(status))
                GRPC_REQUESTS.labels(service, method, code).inc()
                GRPC_LATENCY.labels(service, method).observe(time.perf_counter() - start)

        return grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


@dataclass
class ServiceServer:
    """A grpc.aio server with health and reflection. Register servicers on `.server` (or pass
    `add_servicers`), then `await start()`, and `set_serving()` once the service is ready."""

    name: str                                  # short name for metrics and logs
    service_names: list[str]                   # full names, e.g. "foryou.ThunderService"
    host: str = "127.0.0.1"
    port: int = 0                              # 0 = pick a free port
    max_concurrent_rpcs: int | None = None     # beyond it grpc answers RESOURCE_EXHAUSTED
    server: grpc.aio.Server = field(init=False)
    health: health.aio.HealthServicer = field(init=False)

    def __post_init__(self) -> None:
        self.server = grpc.aio.server(
            interceptors=[_MetricsInterceptor(self.name)],
            maximum_concurrent_rpcs=self.max_concurrent_rpcs,
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> "ServiceServer":
        try:
            bound = tls.add_port(self.server, f"{self.host}:{self.port}")  # TLS when configured
        except RuntimeError as exc:  # grpc raises on a taken port
            raise RuntimeError(f"{self.name}: cannot bind {self.host}:{self.port} (port in use?)") from exc
        if bound == 0:
            raise RuntimeError(f"{self.name}: cannot bind {self.host}:{self.port} (port in use?)")
        self.port = bound
        await self._set_all(NOT_SERVING)
        await self.server.start()
        log.info("%s gRPC listening on %s (NOT_SERVING until ready)", self.name, self.address)
        return self

    async def _set_all(self, status) -> None:
        await self.health.set("", status)
        for service in self.service_names:
            await self.health.set(service, status)

    async def set_serving(self) -> None:
        await self._set_all(SERVING)
        log.info("%s is SERVING on %s", self.name, self.address)

    async def set_not_serving(self) -> None:
        await self._set_all(NOT_SERVING)

    async def stop(self, grace_s: float = 1.0) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()
