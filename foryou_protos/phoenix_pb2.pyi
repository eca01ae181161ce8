from foryou_protos import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HistoryItem(_message.Message):
    __slots__ = ("post_id", "author_id", "actions", "surface", "timestamp_ms", "dwell_time_ms")
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    SURFACE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    DWELL_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    post_id: int
    author_id: int
    actions: _containers.RepeatedScalarFieldContainer[_common_pb2.Action]
    surface: _common_pb2.ProductSurface
    timestamp_ms: int
    dwell_time_ms: int
    def __init__(self, post_id: _Optional[int] = ..., author_id: _Optional[int] = ..., actions: _Optional[_Iterable[_Union[_common_pb2.Action, str]]] = ..., surface: _Optional[_Union[_common_pb2.ProductSurface, str]] = ..., timestamp_ms: _Optional[int] = ..., dwell_time_ms: _Optional[int] = ...) -> None: ...

class RankRequest(_message.Message):
    __slots__ = ("user_id", "history", "request_id", "post_ids", "author_ids", "surfaces", "surface")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    POST_IDS_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_IDS_FIELD_NUMBER: _ClassVar[int]
    SURFACES_FIELD_NUMBER: _ClassVar[int]
    SURFACE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    history: _containers.RepeatedCompositeFieldContainer[HistoryItem]
    request_id: str
    post_ids: _containers.RepeatedScalarFieldContainer[int]
    author_ids: _containers.RepeatedScalarFieldContainer[int]
    surfaces: _containers.RepeatedScalarFieldContainer[_common_pb2.ProductSurface]
    surface: _common_pb2.ProductSurface
    def __init__(self, user_id: _Optional[int] = ..., history: _Optional[_Iterable[_Union[HistoryItem, _Mapping]]] = ..., request_id: _Optional[str] = ..., post_ids: _Optional[_Iterable[int]] = ..., author_ids: _Optional[_Iterable[int]] = ..., surfaces: _Optional[_Iterable[_Union[_common_pb2.ProductSurface, str]]] = ..., surface: _Optional[_Union[_common_pb2.ProductSurface, str]] = ...) -> None: ...

class RankResponse(_message.Message):
    __slots__ = ("checkpoint_id", "predictions", "num_outputs", "content_dim", "content_f16")
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    NUM_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_DIM_FIELD_NUMBER: _ClassVar[int]
    CONTENT_F16_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    predictions: _containers.RepeatedScalarFieldContainer[float]
    num_outputs: int
    content_dim: int
    content_f16: bytes
    def __init__(self, checkpoint_id: _Optional[str] = ..., predictions: _Optional[_Iterable[float]] = ..., num_outputs: _Optional[int] = ..., content_dim: _Optional[int] = ..., content_f16: _Optional[bytes] = ...) -> None: ...

class RetrieveRequest(_message.Message):
    __slots__ = ("user_id", "history", "k", "exclude_post_ids", "exclude_author_ids", "request_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_POST_IDS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_AUTHOR_IDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    history: _containers.RepeatedCompositeFieldContainer[HistoryItem]
    k: int
    exclude_post_ids: _containers.RepeatedScalarFieldContainer[int]
    exclude_author_ids: _containers.RepeatedScalarFieldContainer[int]
    request_id: str
    def __init__(self, user_id: _Optional[int] = ..., history: _Optional[_Iterable[_Union[HistoryItem, _Mapping]]] = ..., k: _Optional[int] = ..., exclude_post_ids: _Optional[_Iterable[int]] = ..., exclude_author_ids: _Optional[_Iterable[int]] = ..., request_id: _Optional[str] = ...) -> None: ...

class RetrievedPost(_message.Message):
    __slots__ = ("post_id", "author_id", "score")
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    post_id: int
    author_id: int
    score: float
    def __init__(self, post_id: _Optional[int] = ..., author_id: _Optional[int] = ..., score: _Optional[float] = ...) -> None: ...

class RetrieveResponse(_message.Message):
    __slots__ = ("posts", "corpus_size", "checkpoint_id")
    POSTS_FIELD_NUMBER: _ClassVar[int]
    CORPUS_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    posts: _containers.RepeatedCompositeFieldContainer[RetrievedPost]
    corpus_size: int
    checkpoint_id: str
    def __init__(self, posts: _Optional[_Iterable[_Union[RetrievedPost, _Mapping]]] = ..., corpus_size: _Optional[int] = ..., checkpoint_id: _Optional[str] = ...) -> None: ...

class ModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfoResponse(_message.Message):
    __slots__ = ("ranker_config_json", "retriever_config_json", "checkpoint_id", "corpus_size", "action_names", "max_history", "max_candidates")
    RANKER_CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    RETRIEVER_CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    CORPUS_SIZE_FIELD_NUMBER: _ClassVar[int]
    ACTION_NAMES_FIELD_NUMBER: _ClassVar[int]
    MAX_HISTORY_FIELD_NUMBER: _ClassVar[int]
    MAX_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    ranker_config_json: str
    retriever_config_json: str
    checkpoint_id: str
    corpus_size: int
    action_names: _containers.RepeatedScalarFieldContainer[str]
    max_history: int
    max_candidates: int
    def __init__(self, ranker_config_json: _Optional[str] = ..., retriever_config_json: _Optional[str] = ..., checkpoint_id: _Optional[str] = ..., corpus_size: _Optional[int] = ..., action_names: _Optional[_Iterable[str]] = ..., max_history: _Optional[int] = ..., max_candidates: _Optional[int] = ...) -> None: ...
