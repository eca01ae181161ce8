"""Wire encoding of stored posts: each post is kept encoded as a response entry, so that an
answer is a bytes join instead of building and serializing messages.

`wire` is a post encoded as field 1 of a message. It is field 1 of GetPostsResponse and of
PostEvent (`created`), so one encoding serves both; checked here so a contract change cannot
silently break it. (The serving answers are columns: columns.py.)
"""
from __future__ import annotations

from foryou_protos import common_pb2, events_pb2, thunder_pb2

for _message, _field in ((thunder_pb2.GetPostsResponse, "posts"), (events_pb2.PostEvent, "created")):
    assert _message.DESCRIPTOR.fields_by_name[_field].number == 1, (_message, _field)


def encode_wire(post: common_pb2.Post) -> bytes:
    return thunder_pb2.GetPostsResponse(posts=[post]).SerializeToString()


def decode_wire(wire: bytes) -> common_pb2.Post:
    return thunder_pb2.GetPostsResponse.FromString(wire).posts[0]
