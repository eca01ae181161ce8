"""The real ScoredPostsService over grpc.aio, in-process, with both dependencies unreachable
(nothing listens on their ports): validation and the fully degraded path."""
from __future__ import annotations

import grpc
import pytest

from foryou.broker import free_port
from foryou.grpc_server import ServiceServer
from foryou_protos import home_mixer_pb2, home_mixer_pb2_grpc
from home_mixer.clients import PhoenixClient, ThunderClient
from home_mixer.pipeline import build_pipeline
from home_mixer.service import DEGRADED, ScoredPostsServicer

SPEC_FILTER_ORDER = [
    "DropDuplicatesFilter", "CoreDataHydrationFilter", "AgeFilter", "SelfPostFilter",
    "OutOfNetworkReplyRepostFilter", "RepostDeduplicationFilter", "IneligibleSubscriptionFilter", "PreviouslySeenPostsFilter", "PreviouslyServedPostsFilter",
    "MutedKeywordFilter", "AuthorSocialgraphFilter",
]


@pytest.fixture(scope="module")
async def offline_stub():
    thunder = ThunderClient(f"127.0.0.1:{free_port()}", timeout_s=0.5)
    phoenix = PhoenixClient(f"127.0.0.1:{free_port()}", timeout_s=0.5)
    pipeline = build_pipeline(thunder, phoenix, publisher=None)
    server = ServiceServer("home_mixer_test", ["foryou.ScoredPostsService"], port=0)
    home_mixer_pb2_grpc.add_ScoredPostsServiceServicer_to_server(ScoredPostsServicer(pipeline), server.server)
    await server.start()
    await server.set_serving()
    channel = grpc.aio.insecure_channel(server.address)
    yield home_mixer_pb2_grpc.ScoredPostsServiceStub(channel), pipeline
    await channel.close()
    await server.stop(0)
    await thunder.close()
    await phoenix.close()


async def test_pipeline_order_is_the_specs():  # the clients open grpc.aio channels: a running loop
    pipeline = build_pipeline(ThunderClient("127.0.0.1:1"), PhoenixClient("127.0.0.1:1"), None)
    assert [q.name for q in pipeline.query_hydrators] == ["UserContext", "UserActionSequence", "UserFeatures"]
    assert [s.name for s in pipeline.sources] == ["ThunderSource", "PhoenixSource"]
    assert [h.name for h in pipeline.hydrators] == ["CoreDataHydrator", "InNetworkHydrator", "SubscriptionHydrator"]
    assert [f.name for f in pipeline.filters] == SPEC_FILTER_ORDER
    assert [s.name for s in pipeline.scorers] == [
        "PhoenixScorer", "WeightedScorer", "MutualFollowReplyBoostScorer", "AuthorDiversityScorer",
        "OutOfNetworkScorer", "AuthorColdStartScorer"]
    assert pipeline.selector.name == "TopKScoreSelector"
    assert [f.name for f in pipeline.post_selection_filters] == [
        "VisibilityFilter", "DedupConversationFilter", "DppDiversityFilter"]


@pytest.mark.parametrize("fields, named", [
    ({"viewer_id": 0}, "viewer_id"),
    ({"params": {"not_a_param": 1.0}}, "not_a_param"),
    ({"params": {"result_size": -1.0}}, "result_size"),
    ({"params": {"result_size": 1e6}}, "result_size"),
    ({"disabled_components": ["FluxCapacitor"]}, "FluxCapacitor"),
    # The fail-closed safety filters are not a request's to switch off.
    *[({"disabled_components": [name]}, f"{name}' is a safety filter") for name in (
        "CoreDataHydrationFilter", "IneligibleSubscriptionFilter", "MutedKeywordFilter", "AuthorSocialgraphFilter",
        "VisibilityFilter")],
])
async def test_bad_requests_get_invalid_argument(offline_stub, fields, named):
    stub, _ = offline_stub
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetScoredPosts(home_mixer_pb2.ScoredPostsQuery(**{"viewer_id": 1, **fields}), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in err.value.details()


async def test_all_dependencies_down_still_answers_and_says_why(offline_stub):
    stub, _ = offline_stub
    reply = await stub.GetScoredPosts(
        home_mixer_pb2.ScoredPostsQuery(viewer_id=1, request_id="r-offline", debug=True), timeout=10)
    assert reply.request_id == "r-offline"
    assert list(reply.scored_posts) == []
    assert DEGRADED["ThunderSource"] in reply.degraded
    assert DEGRADED["PhoenixSource"] in reply.degraded
    assert {t.stage for t in reply.debug.timings} >= {"query_hydrators", "sources", "filters", "total"}


async def test_disabled_component_is_not_called(offline_stub):
    stub, _ = offline_stub
    reply = await stub.GetScoredPosts(home_mixer_pb2.ScoredPostsQuery(
        viewer_id=1, disabled_components=["PhoenixSource"]), timeout=10)
    assert DEGRADED["PhoenixSource"] not in reply.degraded
    assert DEGRADED["ThunderSource"] in reply.degraded
