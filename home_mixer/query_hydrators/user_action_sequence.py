"""UserActionSequence: the user's recent engagements as the model's history.

Actions by the user on the same post within a short window are one entry with a multi-hot
action set (a like and a reply a minute apart are one interaction); entries with no usable
action are dropped; beyond the history length the oldest go."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from candidate_pipeline import QueryHydrator
from foryou_protos import common_pb2
from home_mixer.query import HistoryEntry, ScoredPostsQuery

_USABLE_ACTIONS = frozenset(v for v in common_pb2.Action.values() if v != common_pb2.ACTION_UNSPECIFIED)


def merge_engagements(engagements: Iterable[common_pb2.Engagement], window_ms: int,
                      max_entries: int) -> tuple[HistoryEntry, ...]:
    """Engagements oldest first -> history entries oldest first."""
    entries: list[HistoryEntry] = []
    open_entry: dict[int, int] = {}  # post id -> index of its latest entry
    for engagement in sorted(engagements, key=lambda e: e.timestamp_ms):
        actions = frozenset(engagement.actions) & _USABLE_ACTIONS
        if not actions:
            continue
        index = open_entry.get(engagement.post_id)
        if index is not None and engagement.timestamp_ms - entries[index].timestamp_ms <= window_ms:
            entries[index] = dataclasses.replace(entries[index], actions=entries[index].actions | actions,
                                                 dwell_time_ms=max(entries[index].dwell_time_ms,
                                                                   engagement.dwell_time_ms))
            continue
        open_entry[engagement.post_id] = len(entries)
        entries.append(HistoryEntry(engagement.post_id, engagement.post_author_id, actions,
                                    engagement.surface, engagement.timestamp_ms, engagement.dwell_time_ms))
    return tuple(entries[-max_entries:]) if max_entries else ()


class UserActionSequenceHydrator(QueryHydrator[ScoredPostsQuery]):
    name = "UserActionSequence"
    reads = ("user_context",)
    writes = ("history",)

    async def hydrate(self, query: ScoredPostsQuery) -> ScoredPostsQuery:
        context = query.user_context
        if context is None:
            raise LookupError("no user context from Thunder")
        history = merge_engagements(context.engagements, query.params.history_merge_window_ms,
                                    query.params.max_history)
        return dataclasses.replace(query, history=history)

    def update(self, query: ScoredPostsQuery, hydrated: ScoredPostsQuery) -> None:
        query.history = hydrated.history
