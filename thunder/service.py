"""ThunderService over gRPC: request validation and proto building around the stores.

`ThunderHandlers` holds the logic as plain synchronous methods (timed directly by the bench);
`ThunderServicer` is the thin grpc.aio adapter that turns `InvalidArgument` into
INVALID_ARGUMENT.

The serving answers (GetInNetworkPosts, HydratePosts) are columns (columns.py). GetPosts is
returned already serialized: each stored post keeps its encoding as a response entry, so a
reply of many posts is a bytes join rather than message copies and a serialization. `add_to_server` registers the
service with serializers that pass such bytes through; the wire format is the proto's."""
from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

import grpc

from foryou.snowflake import now_ms
from foryou_protos import thunder_pb2, thunder_pb2_grpc
from thunder import metrics
from thunder.columns import RowCache, post_columns
from thunder.id_tables import IdSet
from thunder.post_store import PostStore
from thunder.query import InNetworkQuery
from thunder.settings import QueryLimits
from thunder.user_store import UserStore

SERVICE_NAME = thunder_pb2.DESCRIPTOR.services_by_name["ThunderService"].full_name


class InvalidArgument(ValueError):
    """A request field is out of bounds; the message names the field."""


def _require_at_most(field: str, values, limit: int) -> None:
    if len(values) > limit:
        raise InvalidArgument(f"{field} has {len(values)} entries; at most {limit} are allowed")


class ThunderHandlers:
    def __init__(self, posts: PostStore, users: UserStore, limits: QueryLimits | None = None,
                 clock: Callable[[], int] = now_ms) -> None:
        self.posts = posts
        self.users = users
        self.limits = limits or QueryLimits()
        self.clock = clock
        self.rows = RowCache()

    def in_network_query(self, request: thunder_pb2.GetInNetworkPostsRequest) -> InNetworkQuery:
        limits = self.limits
        if not request.user_id:
            raise InvalidArgument("user_id is required")
        if request.max_age_ms < 0:
            raise InvalidArgument(f"max_age_ms must be >= 0, got {request.max_age_ms}")
        _require_at_most("exclude_post_ids", request.exclude_post_ids, limits.max_exclusions)
        # IdSet reads a repeated field at C speed; the answer's order does not depend on the
        # order of the following list. A list longer than max_following (the limit HomeMixer
        # shares, foryou/event_rules.py) keeps its last entries: lists are in follow order
        # (UserContext's is), so the viewer's most recent follows are read.
        if request.following_user_ids:
            ids = request.following_user_ids
            if len(ids) > limits.max_following:
                metrics.FOLLOWING_TRUNCATED.inc()
                ids = ids[-limits.max_following:]
            following: Collection[int] = IdSet(ids)
        else:
            following = self.users.following(request.user_id)
            if len(following) > limits.max_following:
                metrics.FOLLOWING_TRUNCATED.inc()
                following = dict.fromkeys(list(following)[-limits.max_following:])
        retention = self.posts.limits.retention_ms
        max_age = min(request.max_age_ms or retention, retention)
        return InNetworkQuery(
            viewer_id=request.user_id,
            following=following,
            following_set=following,
            exclude=IdSet(request.exclude_post_ids) if request.exclude_post_ids else frozenset(),
            max_results=min(request.max_results or limits.max_results, limits.max_results),
            min_created_at_ms=self.clock() - max_age,
            video_only=request.is_video_request,
        )

    def get_in_network_posts(self, request: thunder_pb2.GetInNetworkPostsRequest) -> thunder_pb2.GetInNetworkPostsResponse:
        query = self.in_network_query(request)
        start = time.perf_counter()
        found = self.posts.in_network(query)
        metrics.IN_NETWORK_QUERY.observe(time.perf_counter() - start)
        return thunder_pb2.GetInNetworkPostsResponse(posts=self._columns(found))

    def _lookup(self, post_ids) -> tuple[list, list[int]]:
        """The stored (unexpired) records of `post_ids` in request order, and the ids not found."""
        _require_at_most("post_ids", post_ids, self.limits.max_lookup_ids)
        now, lookup = self.clock(), self.posts.lookup
        found, missing = [], []
        for post_id in post_ids:
            rec = lookup(post_id, now)
            if rec is None:
                missing.append(post_id)
            else:
                found.append(rec)
        return found, missing

    def hydrate_posts(self, request: thunder_pb2.HydratePostsRequest) -> thunder_pb2.HydratePostsResponse:
        """Core data, visibility and authors of the found posts (request order) as columns, and
        the ids Thunder does not know (or that expired)."""
        found, missing = self._lookup(request.post_ids)
        return thunder_pb2.HydratePostsResponse(posts=self._columns(found), missing_post_ids=missing)

    def _columns(self, recs: list) -> thunder_pb2.PostColumns:
        return post_columns(recs, self.rows, self.users, self.posts.impressions)

    def get_posts(self, request: thunder_pb2.GetPostsRequest) -> bytes:
        """A serialized GetPostsResponse: found posts in request order, then the missing ids
        (a protobuf message may be written as the concatenation of its fields)."""
        records, missing = self._lookup(request.post_ids)
        found = [rec.wire for rec in records]
        found.append(thunder_pb2.GetPostsResponse(missing_post_ids=missing).SerializeToString())
        return b"".join(found)

    def author(self, user_id: int) -> thunder_pb2.Author | None:
        users = self.users
        if not users.is_known(user_id):
            return None
        state = users.get(user_id)
        profile = state.profile if state is not None else None
        author = thunder_pb2.Author(user_id=user_id, follower_count=users.follower_count(user_id))
        if profile is not None:
            author.handle = profile.handle
            author.display_name = profile.display_name
            author.verified = profile.verified
        return author

    def get_authors(self, request: thunder_pb2.GetAuthorsRequest) -> thunder_pb2.GetAuthorsResponse:
        _require_at_most("user_ids", request.user_ids, self.limits.max_lookup_ids)
        response = thunder_pb2.GetAuthorsResponse()
        for user_id in request.user_ids:
            author = self.author(user_id)
            if author is None:
                response.missing_user_ids.append(user_id)
            else:
                response.authors.append(author)
        return response

    def get_user_context(self, request: thunder_pb2.GetUserContextRequest) -> thunder_pb2.UserContext:
        if not request.user_id:
            raise InvalidArgument("user_id is required")
        context = thunder_pb2.UserContext(user_id=request.user_id)
        author = self.author(request.user_id)
        if author is not None:
            context.profile.CopyFrom(author)
        state = self.users.get(request.user_id)
        if state is None:
            return context  # a user Thunder has never heard of: empty context, not an error
        following = state.following.present  # follow order, oldest first: keep the most recent
        sent = list(following)[-self.limits.max_following:] if len(following) > self.limits.max_following else following
        context.following_user_ids.extend(sent)
        context.mutual_follow_user_ids.extend(self.users.followed_back(request.user_id, sent))
        context.blocked_user_ids.extend(state.blocked.present)
        context.muted_user_ids.extend(state.muted.present)
        context.muted_keywords.extend(state.muted_keywords.present)
        context.subscribed_author_ids.extend(state.subscriptions.present)
        context.served_post_ids.extend(state.served)
        context.served_at_ms.extend(state.served_at_ms)
        engagements = state.engagements
        if request.max_engagements:
            engagements = engagements[-request.max_engagements:]
        context.engagements.extend(engagements)
        return context


class ThunderServicer(thunder_pb2_grpc.ThunderServiceServicer):
    def __init__(self, handlers: ThunderHandlers, is_ready: Callable[[], bool] = lambda: True) -> None:
        self.handlers = handlers
        self.is_ready = is_ready

    async def _call(self, method, request, context):
        if not self.is_ready():
            # Health says NOT_SERVING until the replay caught up; a caller that asks anyway
            # gets a retryable error rather than a partial answer.
            await context.abort(grpc.StatusCode.UNAVAILABLE, "Thunder is replaying Kafka and not caught up yet")
        try:
            return method(request)
        except InvalidArgument as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    async def GetInNetworkPosts(self, request, context):
        return await self._call(self.handlers.get_in_network_posts, request, context)

    async def HydratePosts(self, request, context):
        return await self._call(self.handlers.hydrate_posts, request, context)

    async def GetPosts(self, request, context):
        return await self._call(self.handlers.get_posts, request, context)

    async def GetAuthors(self, request, context):
        return await self._call(self.handlers.get_authors, request, context)

    async def GetUserContext(self, request, context):
        return await self._call(self.handlers.get_user_context, request, context)


def _serialize(message) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()


def add_to_server(servicer: ThunderServicer, server: grpc.aio.Server) -> None:
    """Like the generated add_ThunderServiceServicer_to_server, with pass-through serializers."""
    requests: dict[str, Any] = {
        "GetInNetworkPosts": thunder_pb2.GetInNetworkPostsRequest,
        "HydratePosts": thunder_pb2.HydratePostsRequest,
        "GetPosts": thunder_pb2.GetPostsRequest,
        "GetAuthors": thunder_pb2.GetAuthorsRequest,
        "GetUserContext": thunder_pb2.GetUserContextRequest,
    }
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(getattr(servicer, name), request_deserializer=message.FromString,
                                                  response_serializer=_serialize)
        for name, message in requests.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
