from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_UNSPECIFIED: _ClassVar[Action]
    FAVORITE: _ClassVar[Action]
    REPLY: _ClassVar[Action]
    REPOST: _ClassVar[Action]
    PHOTO_EXPAND: _ClassVar[Action]
    CLICK: _ClassVar[Action]
    PROFILE_CLICK: _ClassVar[Action]
    VIDEO_QUALITY_VIEW: _ClassVar[Action]
    SHARE: _ClassVar[Action]
    SHARE_VIA_DM: _ClassVar[Action]
    SHARE_VIA_COPY_LINK: _ClassVar[Action]
    DWELL: _ClassVar[Action]
    QUOTE: _ClassVar[Action]
    QUOTED_CLICK: _ClassVar[Action]
    FOLLOW_AUTHOR: _ClassVar[Action]
    NOT_INTERESTED: _ClassVar[Action]
    BLOCK_AUTHOR: _ClassVar[Action]
    MUTE_AUTHOR: _ClassVar[Action]
    REPORT: _ClassVar[Action]

class ProductSurface(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SURFACE_UNSPECIFIED: _ClassVar[ProductSurface]
    HOME_FOR_YOU: _ClassVar[ProductSurface]
    HOME_FOLLOWING: _ClassVar[ProductSurface]
    SEARCH: _ClassVar[ProductSurface]
    PROFILE: _ClassVar[ProductSurface]
    NOTIFICATIONS: _ClassVar[ProductSurface]
    CONVERSATION: _ClassVar[ProductSurface]
    EXPLORE: _ClassVar[ProductSurface]
    BOOKMARKS: _ClassVar[ProductSurface]
    LISTS: _ClassVar[ProductSurface]

class VisibilityLabel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LABEL_UNSPECIFIED: _ClassVar[VisibilityLabel]
    SPAM: _ClassVar[VisibilityLabel]
    VIOLENCE: _ClassVar[VisibilityLabel]
    GORE: _ClassVar[VisibilityLabel]
    NSFW: _ClassVar[VisibilityLabel]
    HATE: _ClassVar[VisibilityLabel]
    ABUSE: _ClassVar[VisibilityLabel]
    MISINFORMATION: _ClassVar[VisibilityLabel]
ACTION_UNSPECIFIED: Action
FAVORITE: Action
REPLY: Action
REPOST: Action
PHOTO_EXPAND: Action
CLICK: Action
PROFILE_CLICK: Action
VIDEO_QUALITY_VIEW: Action
SHARE: Action
SHARE_VIA_DM: Action
SHARE_VIA_COPY_LINK: Action
DWELL: Action
QUOTE: Action
QUOTED_CLICK: Action
FOLLOW_AUTHOR: Action
NOT_INTERESTED: Action
BLOCK_AUTHOR: Action
MUTE_AUTHOR: Action
REPORT: Action
SURFACE_UNSPECIFIED: ProductSurface
HOME_FOR_YOU: ProductSurface
HOME_FOLLOWING: ProductSurface
SEARCH: ProductSurface
PROFILE: ProductSurface
NOTIFICATIONS: ProductSurface
CONVERSATION: ProductSurface
EXPLORE: ProductSurface
BOOKMARKS: ProductSurface
LISTS: ProductSurface
LABEL_UNSPECIFIED: VisibilityLabel
SPAM: VisibilityLabel
VIOLENCE: VisibilityLabel
GORE: VisibilityLabel
NSFW: VisibilityLabel
HATE: VisibilityLabel
ABUSE: VisibilityLabel
MISINFORMATION: VisibilityLabel

class Post(_message.Message):
    __slots__ = ("post_id", "author_id", "created_at_ms", "text", "in_reply_to_post_id", "in_reply_to_user_id", "conversation_id", "repost_of_post_id", "repost_of_user_id", "quote_of_post_id", "photo_count", "video_duration_ms", "subscriber_only", "deleted", "labels")
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_POST_ID_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    REPOST_OF_POST_ID_FIELD_NUMBER: _ClassVar[int]
    REPOST_OF_USER_ID_FIELD_NUMBER: _ClassVar[int]
    QUOTE_OF_POST_ID_FIELD_NUMBER: _ClassVar[int]
    PHOTO_COUNT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBER_ONLY_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    post_id: int
    author_id: int
    created_at_ms: int
    text: str
    in_reply_to_post_id: int
    in_reply_to_user_id: int
    conversation_id: int
    repost_of_post_id: int
    repost_of_user_id: int
    quote_of_post_id: int
    photo_count: int
    video_duration_ms: int
    subscriber_only: bool
    deleted: bool
    labels: _containers.RepeatedScalarFieldContainer[VisibilityLabel]
    def __init__(self, post_id: _Optional[int] = ..., author_id: _Optional[int] = ..., created_at_ms: _Optional[int] = ..., text: _Optional[str] = ..., in_reply_to_post_id: _Optional[int] = ..., in_reply_to_user_id: _Optional[int] = ..., conversation_id: _Optional[int] = ..., repost_of_post_id: _Optional[int] = ..., repost_of_user_id: _Optional[int] = ..., quote_of_post_id: _Optional[int] = ..., photo_count: _Optional[int] = ..., video_duration_ms: _Optional[int] = ..., subscriber_only: _Optional[bool] = ..., deleted: _Optional[bool] = ..., labels: _Optional[_Iterable[_Union[VisibilityLabel, str]]] = ...) -> None: ...

class Engagement(_message.Message):
    __slots__ = ("user_id", "post_id", "post_author_id", "actions", "surface", "dwell_time_ms", "timestamp_ms")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    POST_AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    SURFACE_FIELD_NUMBER: _ClassVar[int]
    DWELL_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    post_id: int
    post_author_id: int
    actions: _containers.RepeatedScalarFieldContainer[Action]
    surface: ProductSurface
    dwell_time_ms: int
    timestamp_ms: int
    def __init__(self, user_id: _Optional[int] = ..., post_id: _Optional[int] = ..., post_author_id: _Optional[int] = ..., actions: _Optional[_Iterable[_Union[Action, str]]] = ..., surface: _Optional[_Union[ProductSurface, str]] = ..., dwell_time_ms: _Optional[int] = ..., timestamp_ms: _Optional[int] = ...) -> None: ...
