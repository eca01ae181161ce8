"""Raw ids -> padded, hashed numpy arrays (the model's inputs); used by server, training, tests.

Histories are given oldest first; the most recent `history_len` items are kept, oldest first,
and padding (hash 0) fills the slots after them. Candidates are padded with hash-0 slots to a
bucketed count so that jitted functions see only a few distinct shapes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol, Sequence, Union

import jax
import numpy as np

from foryou import snowflake
from phoenix.actions import NUM_BINARY_ACTIONS
from phoenix.config import HashConfig, InputsConfig, RankerConfig, RetrieverConfig
from phoenix.hashing import hash_ids

AnyConfig = Union[RankerConfig, RetrieverConfig]

MIN_CANDIDATE_BUCKET = 8
MAX_CANDIDATE_CHUNK = 1024  # candidates scored per jitted call; more are done in chunks of this
DWELL_CAP_S = 60.0  # history dwell input: min(dwell, 60 s) / 60 s
AGE_BUCKET_MS = 60 * 60 * 1000


class PostFeatures(Protocol):
    """Per-post content inputs, looked up by post id (phoenix.content.PostFeatureView)."""

    def content(self, post_ids: np.ndarray) -> np.ndarray:
        """[N] uint64 -> [N, content_dim] float32 (zeros: unknown post)."""

    def sids(self, post_ids: np.ndarray) -> np.ndarray | None:
        """[N] uint64 -> [N, sid_levels] int32 codes (zeros: missing); None: no codebook."""

    def kinds(self, post_ids: np.ndarray) -> np.ndarray:
        """[N] uint64 -> [N, 3] int32 photo / video / kind codes (phoenix/post_kind.py; 0: missing)."""


@dataclass(frozen=True)
class HistoryItem:
    post_id: int
    author_id: int
    actions: tuple[int, ...]  # model action indices 0..17
    surface: int = 0
    time_ms: int = 0   # when the user engaged (0 = unknown): the post's age input
    dwell_ms: int = 0  # dwell time of the engagement (0 = none or unknown)


@dataclass(frozen=True)
class CandidateItem:
    post_id: int
    author_id: int
    surface: int = 0


@dataclass(frozen=True)
class Candidates:
    """One request's candidates as columns, the way a Rank request carries them, so that no
    Python object is made per candidate between the wire and the model's arrays."""
    post_ids: np.ndarray    # [N] uint64
    author_ids: np.ndarray  # [N] uint64
    surfaces: np.ndarray    # [N] int64

    def __len__(self) -> int:
        return len(self.post_ids)

    def __getitem__(self, rows: slice) -> "Candidates":
        return Candidates(self.post_ids[rows], self.author_ids[rows], self.surfaces[rows])

    @classmethod
    def of(cls, items: "Sequence[CandidateItem] | Candidates", where: str = "candidates") -> "Candidates":
        """Columns of CandidateItems (callers that build items one by one: tests, tools)."""
        if isinstance(items, Candidates):
            return items
        for slot, item in enumerate(items):
            if item.post_id <= 0:  # before the uint64 column, which cannot hold a negative id
                raise ValueError(f"{where}[{slot}]: post_id must be > 0")
        n = len(items)
        return cls(np.fromiter((c.post_id for c in items), np.uint64, n),
                   np.fromiter((c.author_id for c in items), np.uint64, n),
                   np.fromiter((c.surface for c in items), np.int64, n))


@dataclass
class UserBatch:
    user_hashes: np.ndarray  # [B, Hu] int32
    history_post_hashes: np.ndarray  # [B, S, Hi] int32
    history_author_hashes: np.ndarray  # [B, S, Ha] int32
    history_actions: np.ndarray  # [B, S, 18] float32 multi-hot; [B, S, 19] with the dwell column
    history_surface: np.ndarray  # [B, S] int32
    # v2 inputs (None when the model does not have them, see InputsConfig)
    history_sids: np.ndarray | None = None     # [B, S, L] int32
    history_content: np.ndarray | None = None  # [B, S, Dc] float32
    history_age: np.ndarray | None = None      # [B, S] int32 age bucket
    user_hour: np.ndarray | None = None        # [B] int32: local hour + 1, 0 = unknown
    history_kind: np.ndarray | None = None     # [B, S, 3] int32 post_kind codes

    @property
    def batch_size(self) -> int:
        return self.user_hashes.shape[0]


@dataclass
class RankBatch:
    user_hashes: np.ndarray  # [B, Hu] int32
    history_post_hashes: np.ndarray  # [B, S, Hi] int32
    history_author_hashes: np.ndarray  # [B, S, Ha] int32
    history_actions: np.ndarray  # [B, S, 18] float32 multi-hot
    history_surface: np.ndarray  # [B, S] int32
    candidate_post_hashes: np.ndarray  # [B, C, Hi] int32
    candidate_author_hashes: np.ndarray  # [B, C, Ha] int32
    candidate_surface: np.ndarray  # [B, C] int32
    history_sids: np.ndarray | None = None
    history_content: np.ndarray | None = None
    history_age: np.ndarray | None = None
    user_hour: np.ndarray | None = None
    history_kind: np.ndarray | None = None
    candidate_sids: np.ndarray | None = None     # [B, C, L] int32
    candidate_content: np.ndarray | None = None  # [B, C, Dc] float32
    candidate_age: np.ndarray | None = None      # [B, C] int32
    candidate_kind: np.ndarray | None = None     # [B, C, 3] int32

    @property
    def batch_size(self) -> int:
        return self.user_hashes.shape[0]

    @property
    def num_candidates(self) -> int:
        return self.candidate_post_hashes.shape[1]

    @property
    def candidate_mask(self) -> np.ndarray:
        """[B, C] bool: True for real (non-padding) candidate slots."""
        return np.asarray(self.candidate_post_hashes)[..., 0] != 0

    def user_batch(self) -> UserBatch:
        return UserBatch(**{f.name: getattr(self, f.name) for f in dataclasses.fields(UserBatch)})


_USER_FIELDS = [f.name for f in dataclasses.fields(UserBatch)]
_RANK_FIELDS = [f.name for f in dataclasses.fields(RankBatch)]
# Pytrees, so batches pass straight into jitted functions.
jax.tree_util.register_dataclass(UserBatch, data_fields=_USER_FIELDS, meta_fields=[])
jax.tree_util.register_dataclass(RankBatch, data_fields=_RANK_FIELDS, meta_fields=[])


def candidate_bucket(n: int) -> int:
    """Padded candidate count for n candidates: powers of two from 8 to 1024, then multiples of 1024."""
    if n <= MIN_CANDIDATE_BUCKET:
        return MIN_CANDIDATE_BUCKET
    if n <= MAX_CANDIDATE_CHUNK:
        return 1 << (int(n) - 1).bit_length()
    return -(-int(n) // MAX_CANDIDATE_CHUNK) * MAX_CANDIDATE_CHUNK


def batch_bucket(n: int) -> int:
    """Padded user count for micro-batches: powers of two."""
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def _hash_posts(h: HashConfig, post_ids: np.ndarray) -> np.ndarray:
    return hash_ids(post_ids, h.num_item_hashes, h.item_vocab_size, h.seed)


def _hash_authors(h: HashConfig, author_ids: np.ndarray) -> np.ndarray:
    # A different seed per entity kind, so a post and a user with the same id do not collide alike.
    return hash_ids(author_ids, h.num_author_hashes, h.author_vocab_size, h.seed + 2)


def hash_users(h: HashConfig, user_ids: np.ndarray) -> np.ndarray:
    return hash_ids(user_ids, h.num_user_hashes, h.user_vocab_size, h.seed + 1)


def hash_candidates(h: HashConfig, post_ids: np.ndarray, author_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(post hashes [..., Hi], author hashes [..., Ha]) for arrays of candidate ids."""
    return _hash_posts(h, np.asarray(post_ids)), _hash_authors(h, np.asarray(author_ids))


def age_buckets(inputs: InputsConfig, post_ids: np.ndarray, at_ms) -> np.ndarray:
    """Post age at `at_ms` (broadcast; 0 = unknown time) as bucket ids: 1 + whole hours for ages
    below `age_buckets` hours, `age_buckets + 1` for older, 0 for missing (no time, padding)."""
    ids = np.asarray(post_ids, np.uint64)
    at = np.broadcast_to(np.asarray(at_ms, np.int64), ids.shape)
    created = (ids >> np.uint64(22)).astype(np.int64) + snowflake.TWITTER_EPOCH_MS
    hours = np.maximum(at - created, 0) // AGE_BUCKET_MS
    out = np.where(hours < inputs.age_buckets, hours + 1, inputs.age_buckets + 1).astype(np.int32)
    out[(at <= 0) | (ids == 0)] = 0
    return out


def _post_inputs(config: AnyConfig, features: PostFeatures | None, post_ids: np.ndarray) -> dict:
    """content / sids / kind arrays for post ids of any shape (zeros without a feature source)."""
    out, inputs = {}, config.inputs
    flat = post_ids.reshape(-1)
    if inputs.post_kind and isinstance(config, RankerConfig):  # a ranker input only
        kinds = features.kinds(flat) if features is not None else np.zeros((flat.shape[0], 3), np.int32)
        out["kind"] = np.where((flat != 0)[:, None], kinds, 0).astype(np.int32).reshape(*post_ids.shape, 3)
    if inputs.content_dim:
        content = features.content(flat) if features is not None else None
        if content is None:
            content = np.zeros((flat.shape[0], inputs.content_dim), np.float32)
        content = np.where((flat != 0)[:, None], content, 0.0).astype(np.float32)
        out["content"] = content.reshape(*post_ids.shape, inputs.content_dim)
    if inputs.sid_levels:
        sids = features.sids(flat) if features is not None else None
        if sids is None:
            sids = np.zeros((flat.shape[0], inputs.sid_levels), np.int32)
        sids = np.where((flat != 0)[:, None], sids, 0).astype(np.int32)
        if sids.size and (sids.min() < 0 or sids.max() >= inputs.sid_codes):
            raise ValueError(f"semantic-id codes outside 0..{inputs.sid_codes - 1}")
        out["sids"] = sids.reshape(*post_ids.shape, inputs.sid_levels)
    return out


@dataclass(frozen=True)
class HistoryColumns:
    """Histories as [B, S] arrays (post id 0 = an empty slot): what make_user_batch builds
    from HistoryItems and training builds straight from its event columns."""
    post_ids: np.ndarray   # uint64
    author_ids: np.ndarray  # uint64
    actions: np.ndarray    # uint32 bit mask of model action indices (bit a = index a)
    surface: np.ndarray    # int
    time_ms: np.ndarray    # int64 (0 = unknown)
    dwell_ms: np.ndarray   # int64 (0 = none or unknown)

    @classmethod
    def of(cls, histories: Sequence[Sequence[HistoryItem]], s: int) -> "HistoryColumns":
        """The most recent `s` items of each history, oldest first."""
        b = len(histories)
        out = cls(np.zeros((b, s), np.uint64), np.zeros((b, s), np.uint64), np.zeros((b, s), np.uint32),
                  np.zeros((b, s), np.int64), np.zeros((b, s), np.int64), np.zeros((b, s), np.int64))
        for row, history in enumerate(histories):
            for slot, item in enumerate(list(history)[-s:]):
                if item.post_id <= 0:
                    raise ValueError(f"histories[{row}]: post_id must be > 0")
                bits = 0
                for a in item.actions:
                    if not 0 <= a < NUM_BINARY_ACTIONS:
                        raise ValueError(f"histories[{row}]: action index {a} outside 0..{NUM_BINARY_ACTIONS - 1}")
                    bits |= 1 << a
                out.post_ids[row, slot], out.author_ids[row, slot], out.actions[row, slot] = \
                    item.post_id, item.author_id, bits
                out.surface[row, slot], out.time_ms[row, slot], out.dwell_ms[row, slot] = \
                    item.surface, item.time_ms, item.dwell_ms
        return out


def _check_surfaces(surface: np.ndarray, vocab: int, where: str) -> None:
    bad = np.flatnonzero(((surface < 0) | (surface >= vocab)).any(axis=tuple(range(1, surface.ndim))))
    if len(bad):
        value = surface[bad[0]][(surface[bad[0]] < 0) | (surface[bad[0]] >= vocab)][0]
        raise ValueError(f"{where}[{bad[0]}].surface {value} outside 0..{vocab - 1}")


def make_user_batch(config: AnyConfig, user_ids: Sequence[int],
                    histories: Sequence[Sequence[HistoryItem]], features: PostFeatures | None = None,
                    hours: Sequence[int] | None = None) -> UserBatch:
    """`features` supplies content vectors / semantic ids for models with those inputs; `hours`
    the viewers' local hours (-1 = unknown) for models with the hour input."""
    if len(user_ids) != len(histories):
        raise ValueError(f"user_ids ({len(user_ids)}) and histories ({len(histories)}) differ in length")
    return user_batch_of_columns(config, user_ids, HistoryColumns.of(histories, config.history_len), features, hours)


def user_batch_of_columns(config: AnyConfig, user_ids, history: HistoryColumns,
                          features: PostFeatures | None = None, hours: Sequence[int] | None = None) -> UserBatch:
    """make_user_batch's arrays from history columns [B, history_len]."""
    b, h, inputs = len(user_ids), config.hash, config.inputs
    post_ids, author_ids, times = history.post_ids, history.author_ids, history.time_ms
    columns = config.num_actions if inputs.history_dwell else NUM_BINARY_ACTIONS
    actions = np.zeros((*post_ids.shape, columns), np.float32)
    actions[..., :NUM_BINARY_ACTIONS] = (history.actions[..., None] >> np.arange(NUM_BINARY_ACTIONS, dtype=np.uint32)) & 1
    if inputs.history_dwell:
        dwell = history.dwell_ms.astype(np.float64)
        actions[..., NUM_BINARY_ACTIONS] = np.where(dwell > 0, np.minimum(dwell / 1000.0, DWELL_CAP_S) / DWELL_CAP_S, 0.0)
    _check_surfaces(history.surface, config.product_surface_vocab_size, "histories")
    extra = {f"history_{k}": v for k, v in _post_inputs(config, features, post_ids).items()}
    if inputs.age_buckets:
        extra["history_age"] = age_buckets(inputs, post_ids, times)
    if inputs.hour_of_day:
        hour = np.full(b, -1, np.int64) if hours is None else np.asarray(hours, np.int64).reshape(b)
        if np.any(hour > 23):
            raise ValueError("hours must be -1 (unknown) or 0..23")
        extra["user_hour"] = np.where(hour >= 0, hour + 1, 0).astype(np.int32)
    return UserBatch(
        user_hashes=hash_users(h, np.asarray(user_ids, np.uint64).reshape(b)),
        history_post_hashes=_hash_posts(h, post_ids),
        history_author_hashes=_hash_authors(h, author_ids),
        history_actions=actions,
        history_surface=history.surface.astype(np.int32),
        **extra,
    )


def candidate_inputs(config: AnyConfig, post_ids: np.ndarray, features: PostFeatures | None,
                     now_ms: int | np.ndarray = 0) -> dict:
    """The v2 candidate arrays (candidate_content / _sids / _age / _kind) for candidate post ids [B, C]."""
    inputs = config.inputs
    out = {f"candidate_{k}": v for k, v in _post_inputs(config, features, post_ids).items()}
    if getattr(inputs, "age_buckets", 0) and isinstance(config, RankerConfig):
        now = np.asarray(now_ms, np.int64)
        out["candidate_age"] = age_buckets(inputs, post_ids, now.reshape(-1, *([1] * (post_ids.ndim - 1)))
                                           if now.ndim else now)
    return out


def make_rank_batch(config: RankerConfig, user_ids: Sequence[int],
                    histories: Sequence[Sequence[HistoryItem]],
                    candidates: Sequence[Sequence[CandidateItem] | Candidates],
                    num_candidates: int | None = None, features: PostFeatures | None = None,
                    now_ms: int | Sequence[int] = 0, hours: Sequence[int] | None = None) -> RankBatch:
    """Padded batch; candidates padded to `num_candidates` (default: candidate_bucket of the longest list).
    `now_ms` is the impression time (one, or one per user; 0 = unknown) for the post-age input."""
    if len(candidates) != len(user_ids):
        raise ValueError(f"user_ids ({len(user_ids)}) and candidates ({len(candidates)}) differ in length")
    rows = [Candidates.of(items, f"candidates[{row}]") for row, items in enumerate(candidates)]
    longest = max((len(r) for r in rows), default=0)
    c = candidate_bucket(longest) if num_candidates is None else int(num_candidates)
    if longest > c:
        raise ValueError(f"{longest} candidates do not fit num_candidates={c}")
    if len(user_ids) != len(histories):
        raise ValueError(f"user_ids ({len(user_ids)}) and histories ({len(histories)}) differ in length")
    history = HistoryColumns.of(histories, config.history_len)
    _check_surfaces(history.surface, config.product_surface_vocab_size, "histories")
    post_ids, author_ids, surface = candidate_columns(rows, c, config.product_surface_vocab_size)
    return rank_batch_of_columns(config, user_ids, history, post_ids, author_ids, surface, features, now_ms, hours)


def candidate_columns(rows: Sequence[Candidates], c: int, surface_vocab: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(post ids, author ids, surfaces) [B, c], each row's candidates first, then padding (0)."""
    b = len(rows)
    post_ids, author_ids = np.zeros((b, c), np.uint64), np.zeros((b, c), np.uint64)
    surface = np.zeros((b, c), np.int64)
    for row, cands in enumerate(rows):
        zero = np.flatnonzero(cands.post_ids == 0)
        if len(zero):
            raise ValueError(f"candidates[{row}][{zero[0]}]: post_id must be > 0")
        bad = np.flatnonzero((cands.surfaces < 0) | (cands.surfaces >= surface_vocab))
        if len(bad):
            raise ValueError(f"candidates[{row}][{bad[0]}].surface {cands.surfaces[bad[0]]} "
                             f"outside 0..{surface_vocab - 1}")
        n = len(cands)
        post_ids[row, :n], author_ids[row, :n], surface[row, :n] = cands.post_ids, cands.author_ids, cands.surfaces
    return post_ids, author_ids, surface


def rank_batch_of_columns(config: RankerConfig, user_ids, history: HistoryColumns, post_ids: np.ndarray,
                          author_ids: np.ndarray, surface: np.ndarray, features: PostFeatures | None = None,
                          now_ms: int | Sequence[int] | np.ndarray = 0, hours: Sequence[int] | None = None
                          ) -> RankBatch:
    """make_rank_batch's arrays from history columns and candidate ids [B, C] (0 = padding)."""
    b = len(user_ids)
    users = user_batch_of_columns(config, user_ids, history, features, hours)
    post_hashes, author_hashes = hash_candidates(config.hash, post_ids, author_ids)
    now = np.asarray(now_ms, np.int64)
    extra = candidate_inputs(config, post_ids, features, now if now.ndim == 0 else now.reshape(b))
    return RankBatch(**_fields(users), candidate_post_hashes=post_hashes,
                     candidate_author_hashes=author_hashes, candidate_surface=np.asarray(surface, np.int32), **extra)


def _fields(batch) -> dict:
    """A batch dataclass's fields as a shallow dict (dataclasses.asdict would deep-copy arrays)."""
    return {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}


def pad_rank_batch(batch: RankBatch, batch_size: int | None = None, num_candidates: int | None = None) -> RankBatch:
    """Add padding users (all-zero rows) and/or padding candidate slots to reach static shapes."""
    b, c = batch.batch_size, batch.num_candidates
    nb, nc = batch_size or b, num_candidates or c
    if nb < b or nc < c:
        raise ValueError("pad_rank_batch can only grow a batch")
    out: dict[str, Any] = {}  # RankBatch fields; the optional ones may be None
    for name in _RANK_FIELDS:
        if getattr(batch, name) is None:
            out[name] = None
            continue
        arr = np.asarray(getattr(batch, name))
        widths = [(0, nb - b)] + [(0, 0)] * (arr.ndim - 1)
        if name.startswith("candidate_"):
            widths[1] = (0, nc - c)
        out[name] = np.pad(arr, widths)
    return RankBatch(**out)
