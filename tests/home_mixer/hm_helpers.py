"""Plain query and candidate builders for the unit tests (no servers)."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from foryou.snowflake import make_id, now_ms
from home_mixer.candidates import CORE_FOUND, CORE_MISSING, CORE_UNKNOWN, PostBatch, label_mask
from home_mixer.params import ACTION_NAMES, Params, parse_params
from home_mixer.query import ScoredPostsQuery, UserFeatures

VIEWER = 1000


def post_id(age_ms: int = 60_000, low: int = 0) -> int:
    return make_id(now_ms() - age_ms, low)


def prediction_row(**named: float) -> np.ndarray:
    """A Phoenix output row with the named actions set, the rest 0."""
    row = np.zeros(len(ACTION_NAMES), dtype=np.float32)
    for name, value in named.items():
        row[ACTION_NAMES.index(name)] = value
    return row


def cand(pid: int, author: int = 7, **fields) -> dict:
    """One candidate's columns. Shorthands: core_data_found (True / False / None), labels (a
    tuple of VisibilityLabel values), predictions (a dict by action name; sets scored_at_ms)."""
    row: dict[str, Any] = {"post_id": pid, "author_id": author}
    if "core_data_found" in fields:
        found = fields.pop("core_data_found")
        row["core_data"] = CORE_FOUND if found is True else CORE_MISSING if found is False else CORE_UNKNOWN
    if "labels" in fields:
        row["label_mask"] = label_mask(fields.pop("labels"))
    if "predictions" in fields:
        row["predictions"] = prediction_row(**fields.pop("predictions"))
        row.setdefault("scored_at_ms", 1)
    row.update(fields)
    return row


def batch(*rows: dict) -> PostBatch:
    """Rows (from `cand`) as a batch; a column some rows lack is its default there."""
    names = {name for row in rows for name in row}
    empty = PostBatch(len(rows))
    columns: dict[str, Any] = {}
    for name in names:
        default = empty[name]
        values: list[Any] = [row.get(name, default[i] if len(default) else None) for i, row in enumerate(rows)]
        columns[name] = np.stack(values) if name == "predictions" else values
    return PostBatch(len(rows), columns)


def with_vectors(candidates: PostBatch, vectors) -> PostBatch:
    """`candidates` with these content vectors (one row per candidate)."""
    return candidates.with_columns({"content_vector": np.array(vectors, np.float32)})


class Split(NamedTuple):
    kept: list[int]      # post ids, in order
    removed: list[int]


async def split(component, q: ScoredPostsQuery, rows: list[dict]) -> Split:
    """The kept and removed ids of a filter run on `rows`."""
    candidates = batch(*rows)
    keep = await component.filter(q, candidates)
    assert keep.dtype == bool and keep.shape == (len(candidates),)
    return Split(ids(candidates.mask(keep)), ids(candidates.mask(~keep)))


def query(features: UserFeatures | None = None, params: dict | None = None, **fields) -> ScoredPostsQuery:
    return ScoredPostsQuery(viewer_id=VIEWER, request_id="req-test",
                            params=parse_params(params or {}) if params else Params(),
                            user_features=features, **fields)


def ids(candidates: PostBatch) -> list[int]:
    return candidates["post_id"].tolist()


# Posts of the integration world (hm_stack.build_world) never in the viewer's feed, whatever is
# down: own, blocked, muted, deleted (also deleted before created), labelled unsafe,
# muted keyword, subscriber-only without a subscription, too old.
NEVER = ("own1", "blocked1", "muted1", "b_deleted", "b_spam", "a_keyword", "sub_paywalled", "old",
         "oon_deleted_first")
