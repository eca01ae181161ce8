from foryou_protos import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PostEvent(_message.Message):
    __slots__ = ("created", "deleted", "labelled")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    LABELLED_FIELD_NUMBER: _ClassVar[int]
    created: _common_pb2.Post
    deleted: PostDeleted
    labelled: PostLabelled
    def __init__(self, created: _Optional[_Union[_common_pb2.Post, _Mapping]] = ..., deleted: _Optional[_Union[PostDeleted, _Mapping]] = ..., labelled: _Optional[_Union[PostLabelled, _Mapping]] = ...) -> None: ...

class PostDeleted(_message.Message):
    __slots__ = ("post_id", "author_id", "deleted_at_ms")
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    DELETED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    post_id: int
    author_id: int
    deleted_at_ms: int
    def __init__(self, post_id: _Optional[int] = ..., author_id: _Optional[int] = ..., deleted_at_ms: _Optional[int] = ...) -> None: ...

class PostLabelled(_message.Message):
    __slots__ = ("post_id", "labels", "labelled_at_ms")
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LABELLED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    post_id: int
    labels: _containers.RepeatedScalarFieldContainer[_common_pb2.VisibilityLabel]
    labelled_at_ms: int
    def __init__(self, post_id: _Optional[int] = ..., labels: _Optional[_Iterable[_Union[_common_pb2.VisibilityLabel, str]]] = ..., labelled_at_ms: _Optional[int] = ...) -> None: ...

class UserEvent(_message.Message):
    __slots__ = ("user_id", "timestamp_ms", "profile", "follow", "unfollow", "block", "unblock", "mute", "unmute", "mute_keyword", "unmute_keyword", "subscribe", "unsubscribe")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    UNFOLLOW_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    UNBLOCK_FIELD_NUMBER: _ClassVar[int]
    MUTE_FIELD_NUMBER: _ClassVar[int]
    UNMUTE_FIELD_NUMBER: _ClassVar[int]
    MUTE_KEYWORD_FIELD_NUMBER: _ClassVar[int]
    UNMUTE_KEYWORD_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    timestamp_ms: int
    profile: Profile
    follow: int
    unfollow: int
    block: int
    unblock: int
    mute: int
    unmute: int
    mute_keyword: str
    unmute_keyword: str
    subscribe: int
    unsubscribe: int
    def __init__(self, user_id: _Optional[int] = ..., timestamp_ms: _Optional[int] = ..., profile: _Optional[_Union[Profile, _Mapping]] = ..., follow: _Optional[int] = ..., unfollow: _Optional[int] = ..., block: _Optional[int] = ..., unblock: _Optional[int] = ..., mute: _Optional[int] = ..., unmute: _Optional[int] = ..., mute_keyword: _Optional[str] = ..., unmute_keyword: _Optional[str] = ..., subscribe: _Optional[int] = ..., unsubscribe: _Optional[int] = ...) -> None: ...

class Profile(_message.Message):
    __slots__ = ("handle", "display_name", "verified")
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    handle: str
    display_name: str
    verified: bool
    def __init__(self, handle: _Optional[str] = ..., display_name: _Optional[str] = ..., verified: _Optional[bool] = ...) -> None: ...

class ServedEvent(_message.Message):
    __slots__ = ("user_id", "request_id", "post_ids", "served_at_ms")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    POST_IDS_FIELD_NUMBER: _ClassVar[int]
    SERVED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    request_id: str
    post_ids: _containers.RepeatedScalarFieldContainer[int]
    served_at_ms: int
    def __init__(self, user_id: _Optional[int] = ..., request_id: _Optional[str] = ..., post_ids: _Optional[_Iterable[int]] = ..., served_at_ms: _Optional[int] = ...) -> None: ...
