"""`foryou feed USER_ID`: ask the running stack's HomeMixer for a For You feed and print it
as a readable table (rank, author, in/out-of-network, score, top predicted actions, text)."""
from __future__ import annotations

import argparse
import asyncio
import sys

import grpc
from pydantic import Field

from foryou import config, tls
from foryou.stack import resolve_home_mixer_address
from foryou_protos import home_mixer_pb2, home_mixer_pb2_grpc

# continuous outputs are not probabilities: leave them out of "top predicted actions"
_NOT_ACTIONS = {"dwell_time"}


async def get_feed(address: str, user_id: int, debug: bool = False, timeout_s: float = 30.0,
                   **query_fields) -> home_mixer_pb2.ScoredPostsResponse:
    async with tls.channel(address) as channel:
        stub = home_mixer_pb2_grpc.ScoredPostsServiceStub(channel)
        query = home_mixer_pb2.ScoredPostsQuery(viewer_id=user_id, debug=debug, **query_fields)
        return await stub.GetScoredPosts(query, timeout=timeout_s)


def top_actions(post: home_mixer_pb2.ScoredPost, k: int = 3) -> list[tuple[str, float]]:
    ranked = sorted(((name, p) for name, p in post.predictions.items() if name not in _NOT_ACTIONS),
                    key=lambda item: -item[1])
    return ranked[:k]


def _snippet(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_feed(response: home_mixer_pb2.ScoredPostsResponse, user_label: str = "", text_width: int = 60) -> str:
    lines = []
    if user_label:
        lines.append(f"For You feed of {user_label} ({len(response.scored_posts)} posts, request {response.request_id})")
    if response.degraded:
        lines.append(f"  degraded: {'; '.join(response.degraded)}")
    lines.append(f"  {'#':>3}  {'author':<22} {'network':<7} {'score':>8}  {'top predicted actions':<44} text")
    for rank, post in enumerate(response.scored_posts, 1):
        author = post.author_screen_names[0] if post.author_screen_names else str(post.author_id)
        network = "in" if post.in_network else "out"
        actions = ", ".join(f"{name} {p:.2f}" for name, p in top_actions(post))
        lines.append(f"  {rank:>3}  @{author:<21} {network:<7} {post.score:>8.4f}  {actions:<44} "
                     f"{_snippet(post.text, text_width)}")
    return "\n".join(lines)


def format_debug(response: home_mixer_pb2.ScoredPostsResponse) -> str:
    lines = ["  removed:"]
    for removed in response.debug.removed:
        lines.append(f"    {removed.post_id} by {removed.removed_by}")
    lines.append("  timings:")
    for timing in response.debug.timings:
        name = f"{timing.stage}/{timing.component}" if timing.component else timing.stage
        lines.append(f"    {name:<40} {timing.duration_ms:8.2f} ms")
    return "\n".join(lines)


class FeedSettings(config.Settings):
    model_config = config.prefixed("feed")
    address: str | None = Field(None, description="HomeMixer host:port (default: the running `foryou up` "
                                                  "stack's, else :50051)")
    debug: bool = Field(False, description="also show removed candidates and stage timings")
    in_network_only: bool = Field(False, description="only posts of followed accounts")
    timeout: float = Field(30.0, description="seconds")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user_id", type=int, help="the viewer's user id")
    config.add_settings(parser, FeedSettings)


def run(args: argparse.Namespace) -> int:
    args = config.resolve(args, FeedSettings)
    if args.user_id <= 0:
        print("foryou feed: USER_ID must be a positive id", file=sys.stderr)
        return 2
    address = resolve_home_mixer_address(args.address)
    try:
        response = asyncio.run(get_feed(address, args.user_id, debug=args.debug, timeout_s=args.timeout,
                                        in_network_only=args.in_network_only))
    except grpc.aio.AioRpcError as exc:
        print(f"foryou feed: {address}: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    print(format_feed(response, f"user {args.user_id}"))
    if args.debug:
        print(format_debug(response))
    return 0
