"""Visibility (post-selection): fresh deleted flag and moderation labels of the selected
posts, read after scoring so a label that arrived meanwhile still counts (a second, small
HydratePosts call for the few selected posts). If Thunder does not answer, the safety cache's
copies (never older than what hydration saw, since every fresh answer refreshes them) stand
in, and the response says so. Also names the softer labels a kept post carries."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Hydrator
from home_mixer.candidates import PostBatch, align, label_names
from home_mixer.clients import ThunderClient
from home_mixer.query import ScoredPostsQuery

CACHED_NOTE = "visibility_cached"
FRESH = ("deleted", "label_mask")


class VisibilityHydrator(Hydrator[ScoredPostsQuery, PostBatch]):
    reads = ("post_id", "deleted", "label_mask")
    writes = ("deleted", "label_mask", "visibility_reason")

    def __init__(self, thunder: ThunderClient, timeout_s: float | None = None) -> None:
        self.thunder = thunder
        self.timeout_s = timeout_s

    async def hydrate(self, query: ScoredPostsQuery, candidates: PostBatch) -> dict[str, np.ndarray]:
        post_ids = candidates["post_id"]
        ids = np.unique(post_ids).tolist()
        if not ids:
            return {}
        try:
            found = await self.thunder.hydrate_posts(query, ids)
        except Exception:
            has_copy, found = self.thunder.cache.posts(ids, ("post_id", *FRESH))
            if not has_copy.any():
                raise
            query.notes.add(CACHED_NOTE)
            found = {name: values[has_copy] for name, values in found.items()}
        hit, at = align(found["post_id"], post_ids)  # expired or unknown now: keep what hydration saw
        out = {}
        for name in FRESH:
            column = candidates[name].copy()
            column[hit] = found[name][at[hit]]
            out[name] = column
        reasons = np.empty(len(candidates), dtype=object)
        reasons[:] = [",".join(label_names(mask)) if mask else "" for mask in out["label_mask"].tolist()]
        out["visibility_reason"] = reasons
        return out
