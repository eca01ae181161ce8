"""A grpc.aio server factory: health checking (NOT_SERVING until the service says it is
ready), server reflection (grpc.reflection.v1 and v1alpha), request metrics, graceful stop,
admission with a queue bounded by time (foryou/admission.py: a call that would wait too long
or cannot finish in its deadline is refused at once), and request
decoding that answers corrupt bytes with INVALID_ARGUMENT and a plain message
(grpc's own deserializer failure is UNKNOWN with a Python class name in it)."""
from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from foryou import config, tls
from foryou.admission import ADMISSION_REFUSED, SERVICE_TIME, AdmissionLimits, Gate, Refused, ServiceTime
from foryou.metrics import GRPC_LATENCY, GRPC_REQUESTS

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def _message_name(deserializer) -> str:
    message = getattr(deserializer, "__self__", None)
    descriptor = getattr(message, "DESCRIPTOR", None)
    return descriptor.full_name if descriptor is not None else "request message"


def _decoder(deserializer):
    """raw bytes -> the request message, or INVALID_ARGUMENT naming the expected message."""
    name = _message_name(deserializer)

    async def decode(raw: bytes, context):
        try:
            return deserializer(raw)
        except Exception:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"request is not a valid {name}: its bytes could not be parsed")
    return decode


def _decoding(kind: str, inner, deserializer):
    """A handler behaviour taking raw bytes (or a stream of them) that decodes them itself."""
    decode = _decoder(deserializer)
    streaming_in = kind.startswith("stream")
    generator = inspect.isasyncgenfunction(inner)

    def requests(raw, context):
        if not streaming_in:
            return None

        async def stream():
            async for item in raw:
                yield await decode(item, context)
        return stream()

    if generator:
        async def handle_gen(raw, context):
            request = requests(raw, context) if streaming_in else await decode(raw, context)
            async for response in inner(request, context):
                yield response
        return handle_gen

    async def handle(raw, context):
        request = requests(raw, context) if streaming_in else await decode(raw, context)
        return await inner(request, context)
    return handle


_HANDLER_FACTORIES = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def _decoding_handler(handler):
    """A streaming handler (health's Watch, reflection) that decodes its requests itself."""
    for kind, factory in _HANDLER_FACTORIES.items():
        inner = getattr(handler, kind)
        if inner is not None:
            return factory(_decoding(kind, inner, handler.request_deserializer),
                           request_deserializer=None, response_serializer=handler.response_serializer)
    return handler


@dataclass
class _Unary:
    """What one unary method's calls pass through, in this order: request metrics (outermost,
    so a refusal or corrupt bytes count by their code), admission (foryou/admission.py: refused
    with RESOURCE_EXHAUSTED at once when the queue's wait is over its time bound or longer than
    the caller's deadline leaves, else it waits for its turn), decoding (corrupt bytes are
    INVALID_ARGUMENT), the handler. Health and reflection skip admission."""
    service: str
    method: str
    inner: object                     # the servicer's coroutine function
    deserializer: object | None       # None: grpc hands the handler a message already
    gate: Gate | None                 # None: always admitted, without a turn
    times: ServiceTime = field(default_factory=ServiceTime)

    def __post_init__(self) -> None:
        self._decode = _decoder(self.deserializer) if self.deserializer is not None else None
        self._latency = GRPC_LATENCY.labels(self.service, self.method)
        self._ok = GRPC_REQUESTS.labels(self.service, self.method, "OK")
        self._service_time = SERVICE_TIME.labels(self.service, self.method)

    async def serve(self, request, context):
        start = time.perf_counter()
        code = "OK"
        try:
            if self.gate is None:
                return await self._run(request, context)
            return await self._admitted(request, context)
        except Exception:
            code = "ERROR"
            raise
        finally:
            status = context.code() if hasattr(context, "code") else None
            if status is not None and status != grpc.StatusCode.OK:
                code = getattr(status, "name", str(status))
            (self._ok if code == "OK" else GRPC_REQUESTS.labels(self.service, self.method, code)).inc()
            self._latency.observe(time.perf_counter() - start)

    async def _admitted(self, request, context):
        gate = self.gate
        assert gate is not None
        try:
            await gate.turn(self.method, gate.check(self.method, self.times, context.time_remaining()))
        except Refused as refused:
            ADMISSION_REFUSED.labels(self.service, self.method, refused.reason).inc()
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(refused))
        start = time.perf_counter()
        try:
            return await self._run(request, context)
        finally:
            took = time.perf_counter() - start
            gate.done(took)
            self.times.observe(took)
            self._service_time.set(self.times.estimate_s)

    async def _run(self, request, context):
        if self._decode is not None:
            request = await self._decode(request, context)
        return await self.inner(request, context)  # type: ignore[operator]


class _ServingInterceptor(grpc.aio.ServerInterceptor):
    """Wraps each method's handler once, on its first call, and reuses the wrapper: unary
    calls as `_Unary` says, streaming ones with decoding only. One interceptor, not one per
    concern: each layer cost a coroutine and a new handler object on every call."""

    def __init__(self, service: str, limits: AdmissionLimits) -> None:
        self._service = service
        self.gate = Gate(service, limits)
        self._wrapped: dict[str, tuple[object, object]] = {}  # method -> (its handler, wrapped)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        full = handler_call_details.method
        cached = self._wrapped.get(full)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(full, handler)
        self._wrapped[full] = (handler, wrapped)
        return wrapped

    def _wrap(self, full: str, handler):
        if handler.unary_unary is None:
            return handler if handler.request_deserializer is None else _decoding_handler(handler)
        exempt = full.startswith(("/grpc.health.", "/grpc.reflection."))
        unary = _Unary(self._service, full.rsplit("/", 1)[-1], handler.unary_unary, handler.request_deserializer,
                       None if exempt else self.gate)
        return grpc.unary_unary_rpc_method_handler(unary.serve, request_deserializer=None,
                                                   response_serializer=handler.response_serializer)


@dataclass
class ServiceServer:
    """A grpc.aio server with health and reflection. Register servicers on `.server` (or pass
    `add_servicers`), then `await start()`, and `set_serving()` once the service is ready."""

    name: str                                  # short name for metrics and logs
    service_names: list[str]                   # full names, e.g. "foryou.ThunderService"
    host: str = config.DEFAULT_HOST
    port: int = 0                              # 0 = pick a free port
    max_concurrent_rpcs: int | None = None     # calls held at once (running or queued); beyond: RESOURCE_EXHAUSTED
    admission: AdmissionLimits = field(default_factory=AdmissionLimits)   # foryou/admission.py
    # Largest request accepted (gRPC refuses a bigger one with RESOURCE_EXHAUSTED before
    # buffering it); sized per service to its largest valid request (docs/reliability.md).
    max_request_bytes: int = config.DEFAULT_MAX_REQUEST_BYTES
    server: grpc.aio.Server = field(init=False)
    health: health.aio.HealthServicer = field(init=False)

    def __post_init__(self) -> None:
        self._interceptor = _ServingInterceptor(self.name, self.admission)
        self.server = grpc.aio.server(
            interceptors=[self._interceptor],
            maximum_concurrent_rpcs=self.max_concurrent_rpcs,
            options=[
                ("grpc.max_receive_message_length", self.max_request_bytes),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._enable_reflection([*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME, REFLECTION_V1])

    def _enable_reflection(self, names: list[str]) -> None:
        """v1alpha from grpcio-reflection, and v1 (which grpcio-reflection does not ship here)
        on the same servicer: the two protocols' messages are the same on the wire."""
        servicer = reflection.aio.ReflectionServicer(names)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, self.server)
        v1 = grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(REFLECTION_V1, {"ServerReflectionInfo": v1}),))

    @classmethod
    def of(cls, name: str, service_names: list[str], settings: config.ServerSettings) -> "ServiceServer":
        """The server a service's settings describe: address, limits and admission."""
        return cls(name, service_names, settings.host, settings.port, settings.max_concurrent_rpcs or None,
                   AdmissionLimits.of(settings), settings.max_request_bytes)

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
