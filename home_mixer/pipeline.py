"""The For You pipeline: every HomeMixer component, wired in the documented order (docs/home_mixer.md)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from candidate_pipeline import Pipeline
from foryou.logs import request_scope
from home_mixer.candidates import PostBatch
from home_mixer.clients import PhoenixClient, ThunderClient
from home_mixer.filters.age import AgeFilter
from home_mixer.filters.author_socialgraph import AuthorSocialgraphFilter
from home_mixer.filters.core_data_hydration import CoreDataHydrationFilter
from home_mixer.filters.dedup_conversation import DedupConversationFilter
from home_mixer.filters.dpp_diversity import DppDiversityFilter
from home_mixer.filters.drop_duplicates import DropDuplicatesFilter
from home_mixer.filters.ineligible_subscription import IneligibleSubscriptionFilter
from home_mixer.filters.muted_keyword import MutedKeywordFilter
from home_mixer.filters.oon_reply_repost import OutOfNetworkReplyRepostFilter
from home_mixer.filters.previously_seen_posts import PreviouslySeenPostsFilter
from home_mixer.filters.previously_served_posts import PreviouslyServedPostsFilter
from home_mixer.filters.repost_deduplication import RepostDeduplicationFilter
from home_mixer.filters.self_post import SelfPostFilter
from home_mixer.filters.visibility import VisibilityFilter
from home_mixer.hydrators.core_data import CoreDataHydrator
from home_mixer.hydrators.in_network import InNetworkHydrator
from home_mixer.hydrators.subscription import SubscriptionHydrator
from home_mixer.hydrators.visibility import VisibilityHydrator
from home_mixer.query import ScoredPostsQuery
from home_mixer.query_hydrators.user_action_sequence import UserActionSequenceHydrator
from home_mixer.query_hydrators.user_context import UserContextHydrator
from home_mixer.query_hydrators.user_features import UserFeaturesHydrator
from home_mixer.scorers.author_cold_start import AuthorColdStartScorer
from home_mixer.scorers.author_diversity import AuthorDiversityScorer
from home_mixer.scorers.mutual_follow_reply_boost import MutualFollowReplyBoostScorer
from home_mixer.scorers.out_of_network import OutOfNetworkScorer
from home_mixer.scorers.phoenix import PhoenixScorer
from home_mixer.scorers.weighted import WeightedScorer
from home_mixer.selectors.top_k_score import TopKScoreSelector
from home_mixer.sources.phoenix import PhoenixSource
from home_mixer.sources.thunder import ThunderSource
from home_mixer.side_effects.record_served import RecordServed, ServedPublisher

PIPELINE_NAME = "for_you"
# A component's own deadline is its RPC deadline plus this slack, so the gRPC deadline fires
# first and the error says which call was slow.
TIMEOUT_SLACK_S = 0.25


def build_pipeline(thunder: ThunderClient, phoenix: PhoenixClient,
                   publisher: ServedPublisher | None) -> Pipeline[ScoredPostsQuery, PostBatch]:
    thunder_s = thunder.timeout_s + TIMEOUT_SLACK_S
    phoenix_s = phoenix.timeout_s + TIMEOUT_SLACK_S
    return Pipeline(
        name=PIPELINE_NAME,
        # UserContext first: the other two read its answer, so they run after it.
        query_hydrators=[UserContextHydrator(thunder, thunder_s), UserActionSequenceHydrator(),
                         UserFeaturesHydrator(thunder)],
        sources=[ThunderSource(thunder, thunder_s), PhoenixSource(phoenix, phoenix_s)],
        # CoreData (one Thunder call) first: the other two read the author id it fills.
        hydrators=[CoreDataHydrator(thunder, thunder_s), InNetworkHydrator(), SubscriptionHydrator()],
        filters=[
            DropDuplicatesFilter(), CoreDataHydrationFilter(), AgeFilter(), SelfPostFilter(),
            OutOfNetworkReplyRepostFilter(), RepostDeduplicationFilter(), IneligibleSubscriptionFilter(),
            PreviouslySeenPostsFilter(), PreviouslyServedPostsFilter(), MutedKeywordFilter(), AuthorSocialgraphFilter(),
        ],
        scorers=[PhoenixScorer(phoenix, phoenix_s), WeightedScorer(), MutualFollowReplyBoostScorer(),
                 AuthorDiversityScorer(), OutOfNetworkScorer(), AuthorColdStartScorer()],
        selector=TopKScoreSelector(),
        post_selection_hydrators=[VisibilityHydrator(thunder, thunder_s)],
        # The DPP last: it chooses among the posts that may be shown.
        post_selection_filters=[VisibilityFilter(), DedupConversationFilter(), DppDiversityFilter()],
        side_effects=[RecordServed(publisher)] if publisher is not None else [],
        result_size=lambda query: query.params.result_size,
        default_timeout_s=1.0,
        batch_type=PostBatch,
        request_scope=request_scope,
    )


def component_names(pipeline: Pipeline) -> frozenset[str]:
    """Every name a request may list in disabled_components."""
    groups: list[Sequence[Any]] = [pipeline.query_hydrators, pipeline.sources, pipeline.hydrators, pipeline.filters, pipeline.scorers,
              [pipeline.selector] if pipeline.selector else [], pipeline.post_selection_hydrators,
              pipeline.post_selection_filters, pipeline.side_effects]
    return frozenset(component.name for group in groups for component in group)
