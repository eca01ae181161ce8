"""VideoDuration: the video length of each candidate (0 = no video), which decides whether
the video-quality-view weight applies."""
from __future__ import annotations

from candidate_pipeline import Hydrator
from home_mixer.candidate import PostCandidate
from home_mixer.clients import ThunderClient
from home_mixer.hydrators.core_data import lookup_posts
from home_mixer.query import ScoredPostsQuery


class VideoDurationHydrator(Hydrator[ScoredPostsQuery, PostCandidate]):
    def __init__(self, thunder: ThunderClient, timeout_s: float | None = None) -> None:
        self.thunder = thunder
        self.timeout_s = timeout_s

    async def hydrate(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> list[PostCandidate]:
        posts = (await lookup_posts(self.thunder, query, candidates)).posts
        out = []
        for c in candidates:
            post = posts.get(c.post_id)
            out.append(c.evolve(video_duration_ms=post.video_duration_ms if post else c.video_duration_ms))
        return out

    def update(self, candidate: PostCandidate, hydrated: PostCandidate) -> None:
        candidate.video_duration_ms = hydrated.video_duration_ms
