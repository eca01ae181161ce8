from foryou_protos import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetInNetworkPostsRequest(_message.Message):
    __slots__ = ("user_id", "following_user_ids", "max_results", "exclude_post_ids", "max_age_ms", "is_video_request")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOWING_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULTS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_POST_IDS_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_MS_FIELD_NUMBER: _ClassVar[int]
    IS_VIDEO_REQUEST_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    following_user_ids: _containers.RepeatedScalarFieldContainer[int]
    max_results: int
    exclude_post_ids: _containers.RepeatedScalarFieldContainer[int]
    max_age_ms: int
    is_video_request: bool
    def __init__(self, user_id: _Optional[int] = ..., following_user_ids: _Optional[_Iterable[int]] = ..., max_results: _Optional[int] = ..., exclude_post_ids: _Optional[_Iterable[int]] = ..., max_age_ms: _Optional[int] = ..., is_video_request: _Optional[bool] = ...) -> None: ...

class PostColumns(_message.Message):
    __slots__ = ("post_ids", "author_ids", "created_at_ms", "texts", "in_reply_to_post_ids", "in_reply_to_user_ids", "conversation_ids", "repost_of_post_ids", "repost_of_user_ids", "quote_of_post_ids", "photo_counts", "video_duration_ms", "subscriber_only", "deleted", "label_masks", "author_handles", "author_verified", "author_follower_counts", "reposted_author_handles", "impression_counts")
    POST_IDS_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_POST_IDS_FIELD_NUMBER: _ClassVar[int]
    IN_REPLY_TO_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_IDS_FIELD_NUMBER: _ClassVar[int]
    REPOST_OF_POST_IDS_FIELD_NUMBER: _ClassVar[int]
    REPOST_OF_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    QUOTE_OF_POST_IDS_FIELD_NUMBER: _ClassVar[int]
    PHOTO_COUNTS_FIELD_NUMBER: _ClassVar[int]
    VIDEO_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBER_ONLY_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    LABEL_MASKS_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_HANDLES_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FOLLOWER_COUNTS_FIELD_NUMBER: _ClassVar[int]
    REPOSTED_AUTHOR_HANDLES_FIELD_NUMBER: _ClassVar[int]
    IMPRESSION_COUNTS_FIELD_NUMBER: _ClassVar[int]
    post_ids: _containers.RepeatedScalarFieldContainer[int]
    author_ids: _containers.RepeatedScalarFieldContainer[int]
    created_at_ms: _containers.RepeatedScalarFieldContainer[int]
    texts: _containers.RepeatedScalarFieldContainer[str]
    in_reply_to_post_ids: _containers.RepeatedScalarFieldContainer[int]
    in_reply_to_user_ids: _containers.RepeatedScalarFieldContainer[int]
    conversation_ids: _containers.RepeatedScalarFieldContainer[int]
    repost_of_post_ids: _containers.RepeatedScalarFieldContainer[int]
    repost_of_user_ids: _containers.RepeatedScalarFieldContainer[int]
    quote_of_post_ids: _containers.RepeatedScalarFieldContainer[int]
    photo_counts: _containers.RepeatedScalarFieldContainer[int]
    video_duration_ms: _containers.RepeatedScalarFieldContainer[int]
    subscriber_only: _containers.RepeatedScalarFieldContainer[bool]
    deleted: _containers.RepeatedScalarFieldContainer[bool]
    label_masks: _containers.RepeatedScalarFieldContainer[int]
    author_handles: _containers.RepeatedScalarFieldContainer[str]
    author_verified: _containers.RepeatedScalarFieldContainer[bool]
    author_follower_counts: _containers.RepeatedScalarFieldContainer[int]
    reposted_author_handles: _containers.RepeatedScalarFieldContainer[str]
    impression_counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, post_ids: _Optional[_Iterable[int]] = ..., author_ids: _Optional[_Iterable[int]] = ..., created_at_ms: _Optional[_Iterable[int]] = ..., texts: _Optional[_Iterable[str]] = ..., in_reply_to_post_ids: _Optional[_Iterable[int]] = ..., in_reply_to_user_ids: _Optional[_Iterable[int]] = ..., conversation_ids: _Optional[_Iterable[int]] = ..., repost_of_post_ids: _Optional[_Iterable[int]] = ..., repost_of_user_ids: _Optional[_Iterable[int]] = ..., quote_of_post_ids: _Optional[_Iterable[int]] = ..., photo_counts: _Optional[_Iterable[int]] = ..., video_duration_ms: _Optional[_Iterable[int]] = ..., subscriber_only: _Optional[_Iterable[bool]] = ..., deleted: _Optional[_Iterable[bool]] = ..., label_masks: _Optional[_Iterable[int]] = ..., author_handles: _Optional[_Iterable[str]] = ..., author_verified: _Optional[_Iterable[bool]] = ..., author_follower_counts: _Optional[_Iterable[int]] = ..., reposted_author_handles: _Optional[_Iterable[str]] = ..., impression_counts: _Optional[_Iterable[int]] = ...) -> None: ...

class GetInNetworkPostsResponse(_message.Message):
    __slots__ = ("posts",)
    POSTS_FIELD_NUMBER: _ClassVar[int]
    posts: PostColumns
    def __init__(self, posts: _Optional[_Union[PostColumns, _Mapping]] = ...) -> None: ...

class HydratePostsRequest(_message.Message):
    __slots__ = ("post_ids",)
    POST_IDS_FIELD_NUMBER: _ClassVar[int]
    post_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, post_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class HydratePostsResponse(_message.Message):
    __slots__ = ("posts", "missing_post_ids")
    POSTS_FIELD_NUMBER: _ClassVar[int]
    MISSING_POST_IDS_FIELD_NUMBER: _ClassVar[int]
    posts: PostColumns
    missing_post_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, posts: _Optional[_Union[PostColumns, _Mapping]] = ..., missing_post_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class GetPostsRequest(_message.Message):
    __slots__ = ("post_ids",)
    POST_IDS_FIELD_NUMBER: _ClassVar[int]
    post_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, post_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class GetPostsResponse(_message.Message):
    __slots__ = ("posts", "missing_post_ids")
    POSTS_FIELD_NUMBER: _ClassVar[int]
    MISSING_POST_IDS_FIELD_NUMBER: _ClassVar[int]
    posts: _containers.RepeatedCompositeFieldContainer[_common_pb2.Post]
    missing_post_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, posts: _Optional[_Iterable[_Union[_common_pb2.Post, _Mapping]]] = ..., missing_post_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class GetAuthorsRequest(_message.Message):
    __slots__ = ("user_ids",)
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, user_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class Author(_message.Message):
    __slots__ = ("user_id", "handle", "display_name", "verified", "follower_count")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    FOLLOWER_COUNT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    handle: str
    display_name: str
    verified: bool
    follower_count: int
    def __init__(self, user_id: _Optional[int] = ..., handle: _Optional[str] = ..., display_name: _Optional[str] = ..., verified: _Optional[bool] = ..., follower_count: _Optional[int] = ...) -> None: ...

class GetAuthorsResponse(_message.Message):
    __slots__ = ("authors", "missing_user_ids")
    AUTHORS_FIELD_NUMBER: _ClassVar[int]
    MISSING_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    authors: _containers.RepeatedCompositeFieldContainer[Author]
    missing_user_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, authors: _Optional[_Iterable[_Union[Author, _Mapping]]] = ..., missing_user_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class GetUserContextRequest(_message.Message):
    __slots__ = ("user_id", "max_engagements")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_ENGAGEMENTS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    max_engagements: int
    def __init__(self, user_id: _Optional[int] = ..., max_engagements: _Optional[int] = ...) -> None: ...

class UserContext(_message.Message):
    __slots__ = ("user_id", "profile", "following_user_ids", "blocked_user_ids", "muted_user_ids", "muted_keywords", "subscribed_author_ids", "served_post_ids", "engagements", "served_at_ms", "mutual_follow_user_ids")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    FOLLOWING_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    MUTED_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    MUTED_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_AUTHOR_IDS_FIELD_NUMBER: _ClassVar[int]
    SERVED_POST_IDS_FIELD_NUMBER: _ClassVar[int]
    ENGAGEMENTS_FIELD_NUMBER: _ClassVar[int]
    SERVED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    MUTUAL_FOLLOW_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    profile: Author
    following_user_ids: _containers.RepeatedScalarFieldContainer[int]
    blocked_user_ids: _containers.RepeatedScalarFieldContainer[int]
    muted_user_ids: _containers.RepeatedScalarFieldContainer[int]
    muted_keywords: _containers.RepeatedScalarFieldContainer[str]
    subscribed_author_ids: _containers.RepeatedScalarFieldContainer[int]
    served_post_ids: _containers.RepeatedScalarFieldContainer[int]
    engagements: _containers.RepeatedCompositeFieldContainer[_common_pb2.Engagement]
    served_at_ms: _containers.RepeatedScalarFieldContainer[int]
    mutual_follow_user_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, user_id: _Optional[int] = ..., profile: _Optional[_Union[Author, _Mapping]] = ..., following_user_ids: _Optional[_Iterable[int]] = ..., blocked_user_ids: _Optional[_Iterable[int]] = ..., muted_user_ids: _Optional[_Iterable[int]] = ..., muted_keywords: _Optional[_Iterable[str]] = ..., subscribed_author_ids: _Optional[_Iterable[int]] = ..., served_post_ids: _Optional[_Iterable[int]] = ..., engagements: _Optional[_Iterable[_Union[_common_pb2.Engagement, _Mapping]]] = ..., served_at_ms: _Optional[_Iterable[int]] = ..., mutual_follow_user_ids: _Optional[_Iterable[int]] = ...) -> None: ...
