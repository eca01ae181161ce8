"""ScoredPostsService: validate the request, build the query, run the pipeline, explain the
result. Thin on purpose; the behaviour lives in the components."""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import grpc
import prometheus_client

from candidate_pipeline import Pipeline, PipelineResult
# request_id is copied into every post of the reply and into the served event, whose bound it is.
from foryou.event_rules import MAX_REQUEST_ID_CHARS
from foryou_protos import home_mixer_pb2, home_mixer_pb2_grpc
from home_mixer.bloom import ImpressionBloomFilter
from home_mixer.candidates import IN_NETWORK, OUT_OF_NETWORK, PostBatch, ancestors_of
from home_mixer.params import ACTION_NAMES
from home_mixer.params import ParamError, Params, parse_params
from home_mixer.pipeline import component_names
from home_mixer.query import ScoredPostsQuery
from home_mixer.settings import HomeMixerSettings

log = logging.getLogger(__name__)

MAX_CLIENT_FIELD_CHARS = 64  # client_app_id, country_code, language_code

# Degradation messages, keyed by the component whose failure causes them. A degraded feed
# is smaller or less well ranked, never less safe (docs/reliability.md).
DEGRADED = {
    "PhoenixScorer": "phoenix_unavailable: ranked by recency",
    "PhoenixSource": "phoenix_retrieval_unavailable: in-network only",
    "ThunderSource": "thunder_unavailable: no in-network posts",
    "UserFeatures": "user_features_unavailable: viewer's blocks, mutes, muted keywords and subscriptions "
                    "unknown, posts needing them removed",
    "UserActionSequence": "user_history_unavailable: ranked without history",
    "CoreDataHydrator": "core_data_unavailable: posts without core data removed",
    "VisibilityHydrator": "visibility_unavailable: deleted flags and labels as of hydration",
}
# What a request took from the safety cache instead of a fresh Thunder answer (query.notes).
CACHED = {
    "user_features_cached": "user_features_cached: viewer's blocks, mutes and keywords from a recent copy",
    "core_data_cached": "core_data_cached: core data from a recent copy; posts without one removed",
    "visibility_cached": "visibility_cached: deleted flags and labels from a recent copy",
}


DEGRADED_RESPONSES = prometheus_client.Counter(
    "foryou_home_mixer_degraded_total", "Feeds served degraded, by reason", ["reason"])


class InvalidRequest(ValueError):
    """Bad input: gRPC INVALID_ARGUMENT with this message (which names the field)."""


@dataclass
class RequestValidator:
    known_components: frozenset[str]
    defaults: Params = Params()
    # Fail-closed safety filters: a request may not switch them off (docs/reliability.md).
    required_components: frozenset[str] = frozenset()
    max_request_ids: int = HomeMixerSettings.default("max_request_ids")
    max_bloom_filters: int = HomeMixerSettings.default("max_bloom_filters")

    def query_from(self, request: home_mixer_pb2.ScoredPostsQuery, deadline: float | None) -> ScoredPostsQuery:
        if request.viewer_id == 0:
            raise InvalidRequest("viewer_id is required and must be non-zero")
        if len(request.request_id) > MAX_REQUEST_ID_CHARS:
            raise InvalidRequest(f"request_id has {len(request.request_id)} characters; at most {MAX_REQUEST_ID_CHARS}")
        for name in ("client_app_id", "country_code", "language_code"):
            if len(getattr(request, name)) > MAX_CLIENT_FIELD_CHARS:
                raise InvalidRequest(f"{name} has more than {MAX_CLIENT_FIELD_CHARS} characters")
        for name in ("seen_ids", "served_ids"):
            if len(getattr(request, name)) > self.max_request_ids:
                raise InvalidRequest(f"{name} has more than {self.max_request_ids} ids")
        try:
            params = parse_params(dict(request.params), self.defaults)
        except ParamError as exc:
            raise InvalidRequest(str(exc)) from exc
        unknown = sorted(set(request.disabled_components) - self.known_components)
        if unknown:
            raise InvalidRequest(f"disabled_components: unknown component {unknown[0]!r}")
        required = sorted(set(request.disabled_components) & self.required_components)
        if required:
            raise InvalidRequest(f"disabled_components: {required[0]!r} is a safety filter and cannot be disabled")
        if len(request.bloom_filter_entries) > self.max_bloom_filters:
            raise InvalidRequest(f"bloom_filter_entries has more than {self.max_bloom_filters} filters")
        blooms = []
        for index, entry in enumerate(request.bloom_filter_entries):
            try:
                blooms.append(ImpressionBloomFilter.from_proto(entry))
            except ValueError as exc:
                raise InvalidRequest(f"bloom_filter_entries[{index}]: {exc}") from exc
        return ScoredPostsQuery(
            viewer_id=request.viewer_id, request_id=request.request_id or uuid.uuid4().hex, params=params,
            client_app_id=request.client_app_id, country_code=request.country_code,
            language_code=request.language_code, seen_ids=frozenset(request.seen_ids),
            served_ids=frozenset(request.served_ids), in_network_only=request.in_network_only,
            is_bottom_request=request.is_bottom_request, bloom_filters=tuple(blooms),
            disabled_components=frozenset(request.disabled_components), debug=request.debug, deadline=deadline,
        )


def fail_closed_filters(pipeline: Pipeline) -> frozenset[str]:
    return frozenset(f.name for f in [*pipeline.filters, *pipeline.post_selection_filters] if f.fail_closed)


def degraded_reasons(result: PipelineResult, fail_closed: frozenset[str] = frozenset()) -> list[str]:
    reasons = [message for component, message in DEGRADED.items() if result.failed(component)]
    notes = getattr(result.query, "notes", ())
    reasons += [message for note, message in CACHED.items() if note in notes]
    reasons += [f"{name}_failed: every candidate it was given removed"
                for name in sorted(fail_closed) if result.failed(name)]
    for reason in reasons:
        DEGRADED_RESPONSES.labels(reason.split(":", 1)[0]).inc()
    return reasons


_POST_COLUMNS = ("post_id", "author_id", "repost_of_post_id", "repost_of_user_id", "in_reply_to_post_id",
                 "conversation_id", "score", "in_network", "scored_at_ms", "author_handle", "reposted_author_handle",
                 "visibility_reason", "source", "weighted_score", "diversity_multiplier", "oon_factor",
                 "retrieval_score", "text")


def scored_posts(batch: PostBatch, request_id: str) -> list[home_mixer_pb2.ScoredPost]:
    """The response's posts, one message per selected row (a few dozen)."""
    posts = []
    predictions = batch["predictions"].tolist()
    for row, values in zip(batch.rows(*_POST_COLUMNS), predictions):
        (post_id, author_id, repost_of, repost_author, reply_to, conversation, score, in_network, scored_at,
         handle, reposted_handle, reason, source, weighted, diversity, oon, retrieval, text) = row
        posts.append(home_mixer_pb2.ScoredPost(
            post_id=post_id, author_id=author_id, reposted_post_id=repost_of, reposted_author_id=repost_author,
            in_reply_to_post_id=reply_to, score=score, in_network=in_network,
            served_type=IN_NETWORK if in_network else OUT_OF_NETWORK, scored_at_ms=scored_at,
            prediction_request_id=request_id if scored_at else "",
            ancestors=ancestors_of(post_id, reply_to, conversation),
            author_screen_names=[h for h in (handle, reposted_handle) if h],
            visibility_reason=reason, source=source,
            predictions=dict(zip(ACTION_NAMES, values)) if scored_at else {},
            components=home_mixer_pb2.ScoreComponents(
                weighted_score=weighted, diversity_multiplier=diversity, out_of_network_factor=oon,
                retrieval_score=retrieval,
            ),
            text=text,
        ))
    return posts


def response_from(result: PipelineResult, debug: bool,
                  fail_closed: frozenset[str] = frozenset()) -> home_mixer_pb2.ScoredPostsResponse:
    response = home_mixer_pb2.ScoredPostsResponse(
        scored_posts=scored_posts(result.selected, result.request_id), request_id=result.request_id,
        degraded=degraded_reasons(result, fail_closed),
    )
    if debug:
        response.debug.removed.extend(home_mixer_pb2.RemovedPost(post_id=post_id, removed_by=r.removed_by)
                                      for r in result.removed for post_id in r.candidates["post_id"].tolist())
        response.debug.timings.extend(home_mixer_pb2.StageTiming(stage=t.stage, component=t.component,
                                                                 duration_ms=t.duration_ms) for t in result.timings)
    return response


class ScoredPostsServicer(home_mixer_pb2_grpc.ScoredPostsServiceServicer):
    def __init__(self, pipeline: Pipeline[ScoredPostsQuery, PostBatch], defaults: Params = Params(),
                 settings: HomeMixerSettings | None = None) -> None:
        """`settings`: the request budget and size limits (default: HomeMixerSettings())."""
        settings = settings or HomeMixerSettings()
        self.pipeline = pipeline
        self.fail_closed = fail_closed_filters(pipeline)
        self.validator = RequestValidator(component_names(pipeline), defaults, self.fail_closed,
                                          settings.max_request_ids, settings.max_bloom_filters)
        self.request_budget_s = settings.request_budget_s  # when the client sets no deadline

    def _deadline(self, context: grpc.aio.ServicerContext) -> float:
        """The client's deadline (less a margin to answer in time), at most our own budget."""
        budget = self.request_budget_s
        remaining = context.time_remaining()
        if remaining is not None:
            budget = min(budget, max(0.0, remaining * 0.9))
        return time.monotonic() + budget

    async def GetScoredPosts(self, request, context):  # noqa: N802 - gRPC method name
        try:
            query = self.validator.query_from(request, self._deadline(context))
        except InvalidRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        result = await self.pipeline.execute(query, query.request_id)
        return response_from(result, query.debug, self.fail_closed)
