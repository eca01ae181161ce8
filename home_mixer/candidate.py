"""One candidate post as it moves through the pipeline: filled by the sources, hydrators and
scorers in turn."""
from __future__ import annotations

from dataclasses import dataclass, field

IN_NETWORK = "in_network"
OUT_OF_NETWORK = "out_of_network"


@dataclass
class PostCandidate:
    post_id: int
    author_id: int
    source: str = ""                   # the pipeline source that produced it
    in_network: bool = False
    retrieval_score: float = 0.0       # Phoenix retrieval similarity (out-of-network)
    # Core data (CoreDataHydrator, or the Thunder source directly).
    core_data_found: bool | None = None  # None: not hydrated (dependency down); False: unknown post
    created_at_ms: int = 0
    text: str = ""
    in_reply_to_post_id: int = 0
    in_reply_to_user_id: int = 0
    conversation_id: int = 0
    repost_of_post_id: int = 0
    repost_of_user_id: int = 0
    quote_of_post_id: int = 0
    ancestors: tuple[int, ...] = ()     # conversation chain, nearest first
    photo_count: int = 0
    video_duration_ms: int = 0
    subscriber_only: bool = False
    viewer_subscribes: bool = False     # the viewer subscribes to the author
    # Author data.
    author_handle: str = ""
    author_verified: bool = False
    author_follower_count: int = 0
    reposted_author_handle: str = ""
    # Post-selection visibility.
    deleted: bool = False
    labels: tuple[int, ...] = ()        # foryou.VisibilityLabel values
    visibility_reason: str = ""
    # Scores.
    predictions: dict[str, float] = field(default_factory=dict)
    prediction_request_id: str = ""
    scored_at_ms: int = 0
    weighted_score: float = 0.0
    diversity_multiplier: float = 1.0
    oon_factor: float = 1.0
    score: float = 0.0

    def evolve(self, **changes) -> "PostCandidate":
        """A shallow copy with `changes`: what hydrators and scorers return. Five times
        cheaper than dataclasses.replace, which matters at 1,000+ candidates per stage."""
        new = object.__new__(PostCandidate)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    @property
    def served_type(self) -> str:
        return IN_NETWORK if self.in_network else OUT_OF_NETWORK

    @property
    def related_ids(self) -> set[int]:
        """The post, the post it reposts and the post it replies to: seeing any of them
        counts as seeing this one."""
        return {i for i in (self.post_id, self.repost_of_post_id, self.in_reply_to_post_id) if i}

    @property
    def ranked_post_id(self) -> int:
        """A repost is judged as its original post."""
        return self.repost_of_post_id or self.post_id

    @property
    def ranked_author_id(self) -> int:
        return self.repost_of_user_id if self.repost_of_post_id and self.repost_of_user_id else self.author_id


def copy_fields(target: object, source: object, names: tuple[str, ...]) -> None:
    """What every hydrator's and scorer's `update` does: take its own fields, leave the rest."""
    for name in names:
        setattr(target, name, getattr(source, name))
