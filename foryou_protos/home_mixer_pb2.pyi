from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImpressionBloomFilter(_message.Message):
    __slots__ = ("bits", "num_bits", "num_hashes")
    BITS_FIELD_NUMBER: _ClassVar[int]
    NUM_BITS_FIELD_NUMBER: _ClassVar[int]
    NUM_HASHES_FIELD_NUMBER: _ClassVar[int]
    bits: bytes
    num_bits: int
    num_hashes: int
    def __init__(self, bits: _Optional[bytes] = ..., num_bits: _Optional[int] = ..., num_hashes: _Optional[int] = ...) -> None: ...

class ScoredPostsQuery(_message.Message):
    __slots__ = ("viewer_id", "client_app_id", "country_code", "language_code", "seen_ids", "served_ids", "in_network_only", "is_bottom_request", "bloom_filter_entries", "params", "disabled_components", "debug", "request_id")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VIEWER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_APP_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    SEEN_IDS_FIELD_NUMBER: _ClassVar[int]
    SERVED_IDS_FIELD_NUMBER: _ClassVar[int]
    IN_NETWORK_ONLY_FIELD_NUMBER: _ClassVar[int]
    IS_BOTTOM_REQUEST_FIELD_NUMBER: _ClassVar[int]
    BLOOM_FILTER_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    DISABLED_COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    DEBUG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    viewer_id: int
    client_app_id: str
    country_code: str
    language_code: str
    seen_ids: _containers.RepeatedScalarFieldContainer[int]
    served_ids: _containers.RepeatedScalarFieldContainer[int]
    in_network_only: bool
    is_bottom_request: bool
    bloom_filter_entries: _containers.RepeatedCompositeFieldContainer[ImpressionBloomFilter]
    params: _containers.ScalarMap[str, float]
    disabled_components: _containers.RepeatedScalarFieldContainer[str]
    debug: bool
    request_id: str
    def __init__(self, viewer_id: _Optional[int] = ..., client_app_id: _Optional[str] = ..., country_code: _Optional[str] = ..., language_code: _Optional[str] = ..., seen_ids: _Optional[_Iterable[int]] = ..., served_ids: _Optional[_Iterable[int]] = ..., in_network_only: _Optional[bool] = ..., is_bottom_request: _Optional[bool] = ..., bloom_filter_entries: _Optional[_Iterable[_Union[ImpressionBloomFilter, _Mapping]]] = ..., params: _Optional[_Mapping[str, float]] = ..., disabled_components: _Optional[_Iterable[str]] = ..., debug: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class ScoreComponents(_message.Message):
    __slots__ = ("weighted_score", "diversity_multiplier", "out_of_network_factor", "retrieval_score")
    WEIGHTED_SCORE_FIELD_NUMBER: _ClassVar[int]
    DIVERSITY_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_NETWORK_FACTOR_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    weighted_score: float
    diversity_multiplier: float
    out_of_network_factor: float
    retrieval_score: float
    def __init__(self, weighted_score: _Optional[float] = ..., diversity_multiplier: _Optional[float] = ..., out_of_network_factor: _Optional[float] = ..., retrieval_score: _Optional[float] = ...) -> None: ...

class ScoredPost(_message.Message):
    __slots__ = ("post_id", "author_id", "reposted_post_id", "reposted_author_id", "in_reply_to_post_id", "score", "in_network", "served_type", "scored_at_ms", "prediction_request_id", "ancestors", "author_screen_names", "visibility_reason", "source", "predictions", "components", "text")
    class PredictionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    REPOSTED_POST_ID_FIELD_NUMBER: _ClassVar[int]
    REPOSTED_AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_POST_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    IN_NETWORK_FIELD_NUMBER: _ClassVar[int]
    SERVED_TYPE_FIELD_NUMBER: _ClassVar[int]
    SCORED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ANCESTORS_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_SCREEN_NAMES_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_REASON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    post_id: int
    author_id: int
    reposted_post_id: int
    reposted_author_id: int
    in_reply_to_post_id: int
    score: float
    in_network: bool
    served_type: str
    scored_at_ms: int
    prediction_request_id: str
    ancestors: _containers.RepeatedScalarFieldContainer[int]
    author_screen_names: _containers.RepeatedScalarFieldContainer[str]
    visibility_reason: str
    source: str
    predictions: _containers.ScalarMap[str, float]
    components: ScoreComponents
    text: str
    def __init__(self, post_id: _Optional[int] = ..., author_id: _Optional[int] = ..., reposted_post_id: _Optional[int] = ..., reposted_author_id: _Optional[int] = ..., in_reply_to_post_id: _Optional[int] = ..., score: _Optional[float] = ..., in_network: _Optional[bool] = ..., served_type: _Optional[str] = ..., scored_at_ms: _Optional[int] = ..., prediction_request_id: _Optional[str] = ..., ancestors: _Optional[_Iterable[int]] = ..., author_screen_names: _Optional[_Iterable[str]] = ..., visibility_reason: _Optional[str] = ..., source: _Optional[str] = ..., predictions: _Optional[_Mapping[str, float]] = ..., components: _Optional[_Union[ScoreComponents, _Mapping]] = ..., text: _Optional[str] = ...) -> None: ...

class RemovedPost(_message.Message):
    __slots__ = ("post_id", "removed_by")
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    REMOVED_BY_FIELD_NUMBER: _ClassVar[int]
    post_id: int
    removed_by: str
    def __init__(self, post_id: _Optional[int] = ..., removed_by: _Optional[str] = ...) -> None: ...

class StageTiming(_message.Message):
    __slots__ = ("stage", "component", "duration_ms")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    component: str
    duration_ms: float
    def __init__(self, stage: _Optional[str] = ..., component: _Optional[str] = ..., duration_ms: _Optional[float] = ...) -> None: ...

class DebugInfo(_message.Message):
    __slots__ = ("removed", "timings")
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    removed: _containers.RepeatedCompositeFieldContainer[RemovedPost]
    timings: _containers.RepeatedCompositeFieldContainer[StageTiming]
    def __init__(self, removed: _Optional[_Iterable[_Union[RemovedPost, _Mapping]]] = ..., timings: _Optional[_Iterable[_Union[StageTiming, _Mapping]]] = ...) -> None: ...

class ScoredPostsResponse(_message.Message):
    __slots__ = ("scored_posts", "request_id", "degraded", "debug")
    SCORED_POSTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEBUG_FIELD_NUMBER: _ClassVar[int]
    scored_posts: _containers.RepeatedCompositeFieldContainer[ScoredPost]
    request_id: str
    degraded: _containers.RepeatedScalarFieldContainer[str]
    debug: DebugInfo
    def __init__(self, scored_posts: _Optional[_Iterable[_Union[ScoredPost, _Mapping]]] = ..., request_id: _Optional[str] = ..., degraded: _Optional[_Iterable[str]] = ..., debug: _Optional[_Union[DebugInfo, _Mapping]] = ...) -> None: ...
