"""Request size limits that match the work: request ids, Retrieve exclusion lists, and the
largest message a server takes."""
from __future__ import annotations

import grpc
import pytest

from foryou.grpc_server import ServiceServer
from foryou_protos import home_mixer_pb2, phoenix_pb2
from home_mixer.service import MAX_REQUEST_ID_CHARS, InvalidRequest, RequestValidator
from phoenix.server_validation import (MAX_EXCLUDE_AUTHOR_IDS, MAX_EXCLUDE_POST_IDS, Limits, ValidationError,
                                       rank_input, retrieve_input)

LIMITS = Limits(max_history=8, max_candidates=16, max_k=100, surface_vocab=4)


def test_home_mixer_bounds_request_id_and_client_fields():
    validator = RequestValidator(frozenset())
    validator.query_from(home_mixer_pb2.ScoredPostsQuery(viewer_id=1, request_id="r" * MAX_REQUEST_ID_CHARS), None)
    with pytest.raises(InvalidRequest, match="request_id"):
        validator.query_from(home_mixer_pb2.ScoredPostsQuery(viewer_id=1, request_id="r" * 900_000), None)
    with pytest.raises(InvalidRequest, match="client_app_id"):
        validator.query_from(home_mixer_pb2.ScoredPostsQuery(viewer_id=1, client_app_id="x" * 65), None)


@pytest.mark.parametrize("field, limit", [("exclude_post_ids", MAX_EXCLUDE_POST_IDS),
                                          ("exclude_author_ids", MAX_EXCLUDE_AUTHOR_IDS)])
def test_phoenix_retrieve_bounds_exclusion_lists(field, limit):
    ok = phoenix_pb2.RetrieveRequest(user_id=1, k=10, **{field: range(1, limit + 1)})
    assert len(getattr(retrieve_input(ok, LIMITS), field)) == limit
    with pytest.raises(ValidationError, match=field):
        retrieve_input(phoenix_pb2.RetrieveRequest(user_id=1, k=10, **{field: range(1, limit + 2)}), LIMITS)


def test_phoenix_bounds_request_id():
    with pytest.raises(ValidationError, match="request_id"):
        rank_input(phoenix_pb2.RankRequest(user_id=1, request_id="r" * 1000), LIMITS)
    with pytest.raises(ValidationError, match="request_id"):
        retrieve_input(phoenix_pb2.RetrieveRequest(user_id=1, k=1, request_id="r" * 1000), LIMITS)


async def test_a_request_over_the_servers_limit_is_refused_before_it_is_read():
    server = ServiceServer("limits", [], max_request_bytes=64 * 1024)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address, options=[
                ("grpc.max_send_message_length", 8 * 1024 * 1024)]) as channel:
            check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=None,
                                        response_deserializer=None)
            await check(b"", timeout=5)          # a small request is fine
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await check(b"\x0a\x80\x80\x04" + b"x" * 65536, timeout=5)   # a 64 KiB string field
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await server.stop(0)
