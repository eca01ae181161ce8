"""Checks and conversion of Phoenix requests: proto -> model features, or a ValidationError
whose message names the offending field (the server answers it with INVALID_ARGUMENT)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from foryou.event_rules import MAX_REQUEST_ID_CHARS
from foryou_protos import common_pb2, phoenix_pb2
from phoenix.features import Candidates, HistoryItem
from phoenix.settings import PhoenixSettings

_MAX_ACTION = max(common_pb2.Action.values())
# Bounds that match the work: a Retrieve excluding millions of ids costs hundreds of MB and
# stalls the event loop; request_id is copied into logs.
MAX_EXCLUDE_POST_IDS = PhoenixSettings.default("max_exclude_post_ids")
MAX_EXCLUDE_AUTHOR_IDS = PhoenixSettings.default("max_exclude_author_ids")


class ValidationError(ValueError):
    """A request field is missing or out of range; the message says which and why."""


@dataclass(frozen=True)
class Limits:
    max_history: int        # the model's history length
    max_candidates: int     # per Rank request (candidates are isolated, so chunked freely)
    max_k: int              # per Retrieve request
    surface_vocab: int      # product-surface table size of the model
    max_exclude_post_ids: int = MAX_EXCLUDE_POST_IDS
    max_exclude_author_ids: int = MAX_EXCLUDE_AUTHOR_IDS


@dataclass(frozen=True)
class RankInput:
    user_id: int
    history: tuple[HistoryItem, ...]
    candidates: Candidates


@dataclass(frozen=True)
class RetrieveInput:
    user_id: int
    history: tuple[HistoryItem, ...]
    k: int
    exclude_post_ids: frozenset[int]
    exclude_author_ids: frozenset[int]


def _request_id(request) -> None:
    if len(request.request_id) > MAX_REQUEST_ID_CHARS:
        raise ValidationError(f"request_id has {len(request.request_id)} characters; at most {MAX_REQUEST_ID_CHARS}")


def _user(user_id: int) -> int:
    if user_id == 0:
        raise ValidationError("user_id is required (non-zero)")
    return user_id


def _surface(value: int, field: str, limits: Limits) -> int:
    if not 0 <= value < limits.surface_vocab:
        raise ValidationError(f"{field}: unknown product surface {value} (0..{limits.surface_vocab - 1})")
    return value


def _history(items, limits: Limits) -> tuple[HistoryItem, ...]:
    if len(items) > limits.max_history:
        raise ValidationError(f"history has {len(items)} items; at most {limits.max_history} allowed")
    out = []
    for i, item in enumerate(items):
        if item.post_id == 0:
            raise ValidationError(f"history[{i}].post_id is required (non-zero)")
        actions = []
        for j, action in enumerate(item.actions):
            if not 1 <= action <= _MAX_ACTION:
                raise ValidationError(f"history[{i}].actions[{j}]: unknown action id {action} (1..{_MAX_ACTION})")
            actions.append(action - 1)  # model action index = enum value - 1
        surface = _surface(item.surface, f"history[{i}].surface", limits)
        if item.timestamp_ms < 0 or item.dwell_time_ms < 0:
            field = "timestamp_ms" if item.timestamp_ms < 0 else "dwell_time_ms"
            raise ValidationError(f"history[{i}].{field} must be >= 0")
        out.append(HistoryItem(post_id=item.post_id, author_id=item.author_id,
                               actions=tuple(sorted(set(actions))), surface=surface,
                               time_ms=item.timestamp_ms, dwell_ms=item.dwell_time_ms))
    return tuple(out)


def rank_input(request: phoenix_pb2.RankRequest, limits: Limits) -> RankInput:
    _request_id(request)
    user_id = _user(request.user_id)
    history = _history(request.history, limits)
    n = len(request.post_ids)
    if n > limits.max_candidates:
        raise ValidationError(f"post_ids has {n} candidates; at most {limits.max_candidates} allowed")
    if len(request.author_ids) != n:
        raise ValidationError(f"author_ids has {len(request.author_ids)} entries for {n} post_ids")
    if request.surfaces and len(request.surfaces) != n:
        raise ValidationError(f"surfaces has {len(request.surfaces)} entries for {n} post_ids (or none)")
    # The packed columns are read as arrays (a buffer copy each), never as a Python int per
    # candidate: at 1,000 candidates that was most of a Rank's Python time.
    post_ids = np.asarray(request.post_ids, np.uint64)
    zero = np.flatnonzero(post_ids == 0)
    if len(zero):
        raise ValidationError(f"post_ids[{zero[0]}] is required (non-zero)")
    surfaces = np.asarray(request.surfaces, np.int64) if request.surfaces else np.full(n, request.surface, np.int64)
    bad = np.flatnonzero((surfaces < 0) | (surfaces >= limits.surface_vocab))
    if len(bad):
        _surface(int(surfaces[bad[0]]), "surface" if not request.surfaces else "surfaces", limits)
    return RankInput(user_id, history, Candidates(post_ids, np.asarray(request.author_ids, np.uint64), surfaces))


def retrieve_input(request: phoenix_pb2.RetrieveRequest, limits: Limits) -> RetrieveInput:
    _request_id(request)
    for field, limit in (("exclude_post_ids", limits.max_exclude_post_ids),
                         ("exclude_author_ids", limits.max_exclude_author_ids)):
        if len(getattr(request, field)) > limit:
            raise ValidationError(f"{field} has {len(getattr(request, field))} ids; at most {limit} allowed")
    user_id = _user(request.user_id)
    history = _history(request.history, limits)
    if not 1 <= request.k <= limits.max_k:
        raise ValidationError(f"k must be between 1 and {limits.max_k}, got {request.k}")
    return RetrieveInput(user_id, history, request.k,
                         frozenset(request.exclude_post_ids), frozenset(request.exclude_author_ids))
