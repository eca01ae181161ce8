"""CoreData: each post's core fields, visibility and author profile from Thunder, for the
candidates the sources did not bring them with (out-of-network ids from Phoenix), in one
HydratePosts call. A post Thunder does not know is CORE_MISSING. If Thunder does not answer,
the safety cache's copies stand in for the posts it has (and the response says so); the
others stay CORE_UNKNOWN. CoreDataHydrationFilter removes both kinds: a post is served only
with known core data."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Hydrator
from home_mixer.candidates import CORE_FOUND, CORE_MISSING, CORE_UNKNOWN, PostBatch, align
from home_mixer.clients import ThunderClient
from home_mixer.query import ScoredPostsQuery
from home_mixer.wire import POST_COLUMNS

CACHED_NOTE = "core_data_cached"
# What this hydrator fills (the post id is what it looks up by).
FILLED = tuple(name for name in POST_COLUMNS if name != "post_id")


class CoreDataHydrator(Hydrator[ScoredPostsQuery, PostBatch]):
    reads = ("post_id", "core_data")
    writes = FILLED

    def __init__(self, thunder: ThunderClient, timeout_s: float | None = None) -> None:
        self.thunder = thunder
        self.timeout_s = timeout_s

    async def hydrate(self, query: ScoredPostsQuery, candidates: PostBatch) -> dict[str, np.ndarray]:
        rows = np.flatnonzero(candidates["core_data"] == CORE_UNKNOWN)
        if len(rows) == 0:
            return {}
        wanted = candidates["post_id"][rows]
        ids = np.unique(wanted).tolist()
        try:
            found = await self.thunder.hydrate_posts(query, ids)
            hit, at = align(found["post_id"], wanted)
            unknown_state = CORE_MISSING  # Thunder answered: what it lacks does not exist
        except Exception:
            has_copy, found = self.thunder.cache.posts(ids, POST_COLUMNS)
            if not has_copy.any():
                raise
            query.notes.add(CACHED_NOTE)
            hit, at = align(np.asarray(ids, dtype=np.int64)[has_copy], wanted)
            found = {name: values[has_copy] for name, values in found.items()}
            unknown_state = CORE_UNKNOWN  # no answer: unknown, not "no such post"
        out = {}
        targets, sources = rows[hit], at[hit]
        for name in FILLED:
            column = candidates[name].copy()
            if name == "core_data":
                column[rows[~hit]] = unknown_state
                column[targets] = CORE_FOUND
            else:
                column[targets] = found[name][sources]
            out[name] = column
        return out
