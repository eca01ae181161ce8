"""grpc.aio clients of Thunder and Phoenix as HomeMixer uses them. Every call carries a
deadline: the dependency's own short timeout, cut to what is left of the request's deadline,
so a slow or dead dependency costs at most that and no request hangs. Every call goes through
the dependency's circuit breaker (foryou/circuit_breaker.py): after repeated failures, or
while the dependency's health says NOT_SERVING, calls fail at once instead of waiting.
Thunder's answers also refresh the safety cache (home_mixer/safety_cache.py).

Replicas (docs/scaling.md): an address may name several replicas, "h1:p1,h2:p2" or a
"dns:///name:port" resolving to several. The channel then balances calls over the replicas
gRPC's own health checking reports SERVING (round_robin + healthCheckConfig), and retries a
call that found its replica gone (UNAVAILABLE) on another; the dependency counts as not
serving only when no replica is."""
from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from foryou import tls
from foryou.circuit_breaker import CircuitBreaker
from foryou.packed import field_number, float16_rows, packed
from foryou_protos import common_pb2, phoenix_pb2, phoenix_pb2_grpc, thunder_pb2, thunder_pb2_grpc
from home_mixer.params import ACTION_NAMES
from home_mixer.query import HistoryEntry, ScoredPostsQuery
from home_mixer.safety_cache import SafetyCache
from home_mixer.settings import HomeMixerSettings as _S
from home_mixer.wire import columns_from_wire

log = logging.getLogger(__name__)

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # Reconnect quickly once a restarted dependency is back.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def service_config(service_name: str) -> str:
    """Balance over the replicas that are SERVING (client-side health checking), and retry a
    call whose replica vanished (all the retried methods are reads)."""
    return json.dumps({
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": service_name},
        "methodConfig": [{
            "name": [{"service": service_name}],
            "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.05s",
                            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]},
        }],
    })


def _ipv4(host: str) -> str:
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        return str(socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0])


@dataclass(frozen=True)
class Target:
    """What one address setting names: the channel target and, for a list, each replica."""
    target: str
    replicas: tuple[str, ...] = ()   # host:port of each listed replica (empty: one, or a resolver's)

    @staticmethod
    def parse(address: str) -> "Target":
        """ "host:port" as it is; "dns:///name:port" (or any gRPC scheme) as it is, balanced over
        what the name resolves to; "h1:p1,h2:p2" as one ipv4: target over the listed replicas
        (hosts resolved once, at start)."""
        parts = [a.strip() for a in address.split(",") if a.strip()]
        if not parts:
            raise ValueError("empty dependency address")
        if len(parts) == 1:
            return Target(parts[0])
        resolved = []
        for part in parts:
            host, sep, port = part.rpartition(":")
            if not sep or not port.isdigit() or "/" in part:
                raise ValueError(f"replica address {part!r} is not host:port")
            try:
                resolved.append(f"{_ipv4(host)}:{port}")
            except OSError as exc:
                raise ValueError(f"replica host {host!r} does not resolve to IPv4: {exc}") from exc
        return Target("ipv4:" + ",".join(resolved), tuple(parts))


class DeadlineExhausted(TimeoutError):
    """The request's deadline has passed before the call could be made."""


# Answers that say nothing about the dependency's health: the request was wrong (a bug of
# ours), not the dependency. Everything else (UNAVAILABLE, DEADLINE_EXCEEDED, ...) counts.
_NOT_DEPENDENCY_FAILURES = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
})


def dependency_failure(exc: BaseException) -> bool:
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code() not in _NOT_DEPENDENCY_FAILURES
    return not isinstance(exc, ValueError)  # a malformed answer is our contract check, not an outage


@dataclass
class BreakerSettings:
    failure_threshold: int = _S.default("breaker_failures")
    reset_timeout_s: float = _S.default("breaker_reset_s")
    health_every_s: float = _S.default("health_every_s")  # 0 = do not watch the dependency's health


class Dependency:
    """What both clients share: a channel, a breaker, and a health watcher."""

    service_name = ""

    def _connect(self, name: str, address: str, breaker: BreakerSettings) -> None:
        self.target = Target.parse(address)
        options = [*CHANNEL_OPTIONS, ("grpc.service_config", service_config(self.service_name))]
        self.channel = tls.channel(self.target.target, options)  # TLS when configured (foryou/tls.py)
        self.replica_serving: dict[str, bool | None] = {r: None for r in self.target.replicas}
        self.breaker = CircuitBreaker(name, breaker.failure_threshold, breaker.reset_timeout_s,
                                      is_failure=dependency_failure)
        self._health_every_s = breaker.health_every_s
        self._health_task: asyncio.Task | None = None

    async def _rpc(self, method, request, query: ScoredPostsQuery | None, timeout_s: float):
        timeout = call_timeout(query, timeout_s) if query is not None else timeout_s  # before the breaker
        return await self.breaker.call(lambda: method(request, timeout=timeout))

    def watch_health(self) -> None:
        """Follow the dependency's health (a Health.Watch stream, so a change is seen at once):
        NOT_SERVING (e.g. replaying Kafka after a restart) is routed around like an open
        breaker. A silent or refusing dependency is the breaker's business, not the
        watcher's; a broken stream is reopened every `health_every_s`. Listed replicas are
        watched one by one and the dependency is serving while any replica is."""
        if self._health_every_s > 0 and self._health_task is None:
            watchers = ([self._watch_replica(r) for r in self.target.replicas] if self.target.replicas
                        else [self._watch(self.channel)])
            self._health_task = asyncio.get_running_loop().create_task(
                _all(watchers), name=f"health-{self.service_name}")

    async def _watch(self, channel: grpc.aio.Channel, replica: str | None = None) -> None:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=self.service_name)
        while True:
            try:
                async for reply in stub.Watch(request):
                    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
                    if replica is not None:
                        self._replica_state(replica, serving)
                    else:
                        self.breaker.set_serving(serving)
                        if not serving:
                            break  # reopen: a balanced channel may find a replica that serves
            except grpc.aio.AioRpcError:
                pass  # down or restarting: the breaker sees the failed calls
            except Exception:  # never let the watcher die
                log.exception("health watch of %s failed", self.service_name)
            if replica is not None:
                self._replica_state(replica, None)  # stream gone: this replica says nothing
            await asyncio.sleep(self._health_every_s)

    async def _watch_replica(self, replica: str) -> None:
        channel = tls.channel(replica, CHANNEL_OPTIONS)
        try:
            await self._watch(channel, replica)
        finally:
            await channel.close()

    def _replica_state(self, replica: str, serving: bool | None) -> None:
        """Serving while any replica is; not serving once none is and one says so; replicas
        that all say nothing (unreachable) leave it to the breaker."""
        self.replica_serving[replica] = serving
        states = self.replica_serving.values()
        if any(s is True for s in states):
            self.breaker.set_serving(True)
        elif any(s is False for s in states):
            self.breaker.set_serving(False)

    async def close(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
            await asyncio.gather(self._health_task, return_exceptions=True)
            self._health_task = None
        await self.channel.close()


async def _all(coroutines) -> None:
    await asyncio.gather(*coroutines)


def call_timeout(query: ScoredPostsQuery, timeout_s: float) -> float:
    remaining = query.remaining_s()
    if remaining is None:
        return timeout_s
    if remaining <= 0:
        raise DeadlineExhausted("request deadline exceeded")
    return min(timeout_s, remaining)


@dataclass(eq=False)
class ThunderClient(Dependency):
    address: str
    timeout_s: float = _S.default("thunder_timeout_s")
    cache: SafetyCache = field(default_factory=SafetyCache)
    breaker_settings: BreakerSettings = field(default_factory=BreakerSettings)
    service_name = "foryou.ThunderService"

    def __post_init__(self) -> None:
        self._connect("thunder", self.address, self.breaker_settings)
        self.stub = thunder_pb2_grpc.ThunderServiceStub(self.channel)

    async def user_context(self, query: ScoredPostsQuery) -> thunder_pb2.UserContext:
        request = thunder_pb2.GetUserContextRequest(user_id=query.viewer_id)
        return await self._rpc(self.stub.GetUserContext, request, query, self.timeout_s)

    async def in_network_posts(self, query: ScoredPostsQuery, following: Iterable[int],
                               max_results: int, max_age_ms: int) -> dict[str, np.ndarray]:
        """Post columns (home_mixer/wire.py), newest first."""
        request = thunder_pb2.GetInNetworkPostsRequest(
            user_id=query.viewer_id, following_user_ids=sorted(following),
            max_results=max_results, max_age_ms=max_age_ms,
        )
        reply = await self._rpc(self.stub.GetInNetworkPosts, request, query, self.timeout_s)
        columns = columns_from_wire(reply.posts)
        self.cache.put_posts(columns)  # fresh facts win over older copies
        return columns

    async def hydrate_posts(self, query: ScoredPostsQuery, post_ids: list[int]) -> dict[str, np.ndarray]:
        """Post columns of the ids Thunder knows (deleted ones included), in request order:
        core data, visibility and authors in one call."""
        request = thunder_pb2.HydratePostsRequest(post_ids=post_ids)
        reply = await self._rpc(self.stub.HydratePosts, request, query, self.timeout_s)
        columns = columns_from_wire(reply.posts)
        self.cache.put_posts(columns)
        return columns


def history_items(history: Iterable[HistoryEntry], max_items: int | None = None) -> list[phoenix_pb2.HistoryItem]:
    # protobuf's stubs type enum fields as the enum class; the plain int values are accepted
    items = [phoenix_pb2.HistoryItem(post_id=e.post_id, author_id=e.author_id,
                                     actions=sorted(e.actions), surface=e.surface,  # type: ignore[arg-type]
                                     timestamp_ms=e.timestamp_ms, dwell_time_ms=e.dwell_time_ms)
             for e in history]
    return items[-max_items:] if max_items else items


_RANK_IDS = (field_number(phoenix_pb2.RankRequest, "post_ids"), field_number(phoenix_pb2.RankRequest, "author_ids"))


def rank_request(query: ScoredPostsQuery, history: list[phoenix_pb2.HistoryItem], post_ids: np.ndarray,
                 author_ids: np.ndarray) -> phoenix_pb2.RankRequest:
    request = phoenix_pb2.RankRequest(user_id=query.viewer_id, history=history, request_id=query.request_id,
                                      surface=common_pb2.HOME_FOR_YOU)
    # The id columns go in as the arrays' bytes (foryou/packed.py), not id by id.
    request.MergeFromString(packed(_RANK_IDS[0], post_ids.astype(np.uint64))
                            + packed(_RANK_IDS[1], author_ids.astype(np.uint64)))
    return request


@dataclass(eq=False)
class PhoenixClient(Dependency):
    address: str
    timeout_s: float = _S.default("phoenix_timeout_s")
    breaker_settings: BreakerSettings = field(default_factory=BreakerSettings)
    service_name = "foryou.PhoenixService"

    def __post_init__(self) -> None:
        self._connect("phoenix", self.address, self.breaker_settings)
        self.stub = phoenix_pb2_grpc.PhoenixServiceStub(self.channel)
        self._info: phoenix_pb2.ModelInfoResponse | None = None

    async def model_info(self, query: ScoredPostsQuery) -> phoenix_pb2.ModelInfoResponse:
        """Cached; dropped after any failed call, so a restarted Phoenix (maybe with another
        model shape) is asked again."""
        if self._info is None:
            self._info = await self._rpc(self.stub.ModelInfo, phoenix_pb2.ModelInfoRequest(), query,
                                         self.timeout_s)
        return self._info

    def forget_model_info(self) -> None:
        self._info = None

    async def retrieve(self, query: ScoredPostsQuery, k: int, exclude_author_ids: Iterable[int],
                       exclude_post_ids: Iterable[int] = ()) -> list[phoenix_pb2.RetrievedPost]:
        info = await self.model_info(query)
        request = phoenix_pb2.RetrieveRequest(
            user_id=query.viewer_id, history=history_items(query.history, info.max_history),
            k=k, exclude_author_ids=sorted(exclude_author_ids), exclude_post_ids=sorted(exclude_post_ids),
            request_id=query.request_id,
        )
        try:
            reply = await self._rpc(self.stub.Retrieve, request, query, self.timeout_s)
        except (grpc.aio.AioRpcError, ConnectionError):
            self.forget_model_info()
            raise
        return list(reply.posts)

    async def rank(self, query: ScoredPostsQuery, post_ids: np.ndarray,
                   author_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions [n, num_outputs] float32, content vectors [n, d] float32 or None when
        the model has none), rows in candidate order. Batches beyond the model's
        max_candidates go out in parallel; any failed batch fails the call. Outputs are by
        position (the contract: index = Action value - 1, then dwell_time, ACTION_NAMES), not
        by the model's own labels, which may abbreviate."""
        info = await self.model_info(query)
        num_outputs = len(ACTION_NAMES)
        if info.action_names and len(info.action_names) != num_outputs:
            raise ValueError(f"Phoenix has {len(info.action_names)} outputs, expected {num_outputs}")
        history = history_items(query.history, info.max_history)
        n = len(post_ids)
        size = info.max_candidates or n or 1
        timeout = call_timeout(query, self.timeout_s)
        bounds = [(i, min(i + size, n)) for i in range(0, n, size)]
        try:
            replies = await asyncio.gather(*(
                self._rpc(self.stub.Rank, rank_request(query, history, post_ids[lo:hi], author_ids[lo:hi]),
                          None, timeout)
                for lo, hi in bounds
            ))
        except (grpc.aio.AioRpcError, ConnectionError):
            self.forget_model_info()
            raise
        predictions, vectors = [], []
        for (lo, hi), reply in zip(bounds, replies):
            values = np.asarray(reply.predictions, dtype=np.float32)
            if reply.num_outputs != num_outputs or len(values) != (hi - lo) * num_outputs:
                raise ValueError(f"Phoenix returned {len(values)} values of {reply.num_outputs} outputs "
                                 f"for {hi - lo} candidates")
            predictions.append(values.reshape(hi - lo, num_outputs))
            if reply.content_dim:
                content = float16_rows(reply.content_f16, reply.content_dim)
                if len(content) != hi - lo:
                    raise ValueError(f"Phoenix returned {len(content)} content vectors for {hi - lo} candidates")
                vectors.append(content)
        if not predictions:
            return np.zeros((0, num_outputs), dtype=np.float32), None
        content_vectors = np.concatenate(vectors) if len(vectors) == len(predictions) else None
        return np.concatenate(predictions), content_vectors
