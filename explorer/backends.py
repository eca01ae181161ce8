"""The explorer's gRPC clients: one grpc.aio channel per service, opened lazily on the running
event loop, every call with a deadline. RPC failures become `ServiceDown` (naming the service)
or `InvalidArgument` (the server's message), which the app renders as error pages."""
from __future__ import annotations

import asyncio
from typing import Any
from dataclasses import dataclass, field

import grpc
import tenacity

from foryou_protos import (common_pb2, home_mixer_pb2, home_mixer_pb2_grpc, phoenix_pb2, phoenix_pb2_grpc,
                           thunder_pb2, thunder_pb2_grpc)

# Thunder rejects longer id lists (its max_lookup_ids); stay well below.
LOOKUP_CHUNK = 1_000
_DOWN_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNIMPLEMENTED,
               grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL,
               grpc.StatusCode.CANCELLED}


class ServiceDown(RuntimeError):
    """A service could not answer (unreachable, too slow, or failing)."""

    def __init__(self, service: str, address: str, code: str, details: str) -> None:
        super().__init__(f"{service} at {address}: {code}: {details}")
        self.service, self.address, self.code, self.details = service, address, code, details


class InvalidArgument(ValueError):
    """The service rejected the request (gRPC INVALID_ARGUMENT); `message` is the server's."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(message)
        self.service, self.message = service, message


@dataclass
class Addresses:
    home_mixer: str
    thunder: str
    phoenix: str


@dataclass
class Backends:
    addresses: Addresses
    timeout_s: float = 10.0         # Thunder and Phoenix lookups
    feed_timeout_s: float = 30.0    # a feed request runs the whole pipeline
    _channels: dict[str, grpc.aio.Channel] = field(default_factory=dict, init=False, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)

    def _channel(self, service: str) -> grpc.aio.Channel:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # grpc.aio channels belong to one event loop
            self._channels, self._loop = {}, loop
        if service not in self._channels:
            address = getattr(self.addresses, service)
            self._channels[service] = grpc.aio.insecure_channel(address, options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.initial_reconnect_backoff_ms", 200), ("grpc.max_reconnect_backoff_ms", 1000)])
        return self._channels[service]

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close()

    async def _call(self, service: str, method, request, timeout_s: float):
        try:
            return await _refusals_retried(method, request, timeout_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(service, exc.details() or "invalid argument") from exc
            raise ServiceDown(service.replace("_", "-"), getattr(self.addresses, service), exc.code().name,
                              exc.details() or "") from exc

    # ------------------------------------------------------------------ HomeMixer

    async def feed(self, query: home_mixer_pb2.ScoredPostsQuery) -> home_mixer_pb2.ScoredPostsResponse:
        stub = home_mixer_pb2_grpc.ScoredPostsServiceStub(self._channel("home_mixer"))
        return await self._call("home_mixer", stub.GetScoredPosts, query, self.feed_timeout_s)

    # ------------------------------------------------------------------ Thunder

    def _thunder(self) -> thunder_pb2_grpc.ThunderServiceStub:
        return thunder_pb2_grpc.ThunderServiceStub(self._channel("thunder"))

    async def _lookup(self, method, make_request, ids: list[int], items, key) -> dict[int, Any]:
        """Thunder lookups by id, deduplicated, in chunks the server accepts."""
        ids, out = list(dict.fromkeys(ids)), {}
        for start in range(0, len(ids), LOOKUP_CHUNK):
            reply = await self._call("thunder", method, make_request(ids[start:start + LOOKUP_CHUNK]), self.timeout_s)
            out.update({key(item): item for item in items(reply)})
        return out

    async def authors(self, user_ids: list[int]) -> dict[int, thunder_pb2.Author]:
        return await self._lookup(self._thunder().GetAuthors, lambda ids: thunder_pb2.GetAuthorsRequest(user_ids=ids),
                                  user_ids, lambda reply: reply.authors, lambda author: author.user_id)

    async def posts(self, post_ids: list[int]) -> dict[int, common_pb2.Post]:
        return await self._lookup(self._thunder().GetPosts, lambda ids: thunder_pb2.GetPostsRequest(post_ids=ids),
                                  post_ids, lambda reply: reply.posts, lambda post: post.post_id)

    async def user_context(self, user_id: int, max_engagements: int = 0) -> thunder_pb2.UserContext:
        request = thunder_pb2.GetUserContextRequest(user_id=user_id, max_engagements=max_engagements)
        return await self._call("thunder", self._thunder().GetUserContext, request, self.timeout_s)

    # ------------------------------------------------------------------ Phoenix

    async def model_info(self) -> phoenix_pb2.ModelInfoResponse:
        stub = phoenix_pb2_grpc.PhoenixServiceStub(self._channel("phoenix"))
        return await self._call("phoenix", stub.ModelInfo, phoenix_pb2.ModelInfoRequest(), self.timeout_s)


def _refused(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@tenacity.retry(retry=tenacity.retry_if_exception(_refused), stop=tenacity.stop_after_attempt(3),
                wait=tenacity.wait_exponential(multiplier=0.1, max=1.0), reraise=True)
async def _refusals_retried(method, request, timeout_s: float):
    """A call the server's admission gate refused (RESOURCE_EXHAUSTED: not run, docs/reliability.md)
    is safe to send again: a page's burst of lookups on a busy machine gets a short back-off, not
    an error page."""
    return await method(request, timeout=timeout_s)
