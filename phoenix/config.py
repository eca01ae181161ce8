"""Model configuration as data: frozen dataclasses, JSON round-trippable.

Every model size is a field here (docs/phoenix.md); presets at the bottom (reference demo, a larger
serving config, and tiny configs for tests).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, TypeVar, cast

from phoenix.actions import NUM_ACTIONS, NUM_BINARY_ACTIONS

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

USER_POOLING = ("mean", "last")
PREFIX_ATTENTION = ("causal", "bidirectional")
CANDIDATE_POSITIONS = ("shared", "sequential")
# "valid": rotary positions count only non-padding slots, so padding never shifts a score;
# "slot": the raw slot index, as the reference release does (exact reference numbers).
POSITION_IDS = ("valid", "slot")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class HashConfig:
    num_user_hashes: int = 2
    num_item_hashes: int = 2
    num_author_hashes: int = 2
    # Buckets per table, bucket 0 (padding) included.
    user_vocab_size: int = 16_384
    item_vocab_size: int = 65_536
    author_vocab_size: int = 16_384
    seed: int = 0
    # False: one table per entity kind and hash function; True: one table per entity kind,
    # shared by its hash functions (fewer parameters, more collisions).
    shared_tables: bool = False

    def __post_init__(self) -> None:
        for name in ("num_user_hashes", "num_item_hashes", "num_author_hashes"):
            if getattr(self, name) < 1:
                raise ValueError(f"HashConfig.{name} must be >= 1")
        for name in ("user_vocab_size", "item_vocab_size", "author_vocab_size"):
            if getattr(self, name) < 2:
                raise ValueError(f"HashConfig.{name} must be >= 2 (bucket 0 is padding)")


@dataclass(frozen=True)
class TransformerConfig:
    emb_size: int = 128
    num_layers: int = 2
    num_q_heads: int = 2
    num_kv_heads: int = 2
    key_size: int = 64
    widening_factor: float = 2.0
    attn_output_multiplier: float = 0.125
    dtype: str = "float32"  # compute dtype; parameters are always float32
    rotary_base: float = 10_000.0
    attn_logit_cap: float = 30.0
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.num_q_heads % self.num_kv_heads:
            raise ValueError("TransformerConfig.num_q_heads must be a multiple of num_kv_heads")
        if self.key_size % 2:
            raise ValueError("TransformerConfig.key_size must be even (rotary embeddings)")
        if self.dtype not in DTYPES:
            raise ValueError(f"TransformerConfig.dtype must be one of {DTYPES}")
        if not self.attn_logit_cap > 0:
            raise ValueError("TransformerConfig.attn_logit_cap must be > 0")
        if self.emb_size < 1 or self.num_layers < 1:
            raise ValueError("TransformerConfig.emb_size and num_layers must be >= 1")

    @property
    def ffn_size(self) -> int:
        """Gated-GELU hidden width: int(widening * D) * 2 // 3, rounded up to a multiple of 8."""
        size = int(self.widening_factor * self.emb_size) * 2 // 3
        return size + (-size) % 8


@dataclass(frozen=True)
class InputsConfig:
    """Which inputs a model has beyond v1's ids. The defaults are v1 (ids only), so a checkpoint
    whose config.json predates this section loads as what it is; the v2 presets switch all on
    (docs/phoenix.md describes each)."""
    content_dim: int = 0          # content-vector width (256 for wordllama); 0 = no content projection
    sid_levels: int = 0           # semantic-id levels L; 0 = no semantic ids
    sid_codes: int = 256          # rows per level's code table, row 0 = "missing"
    age_buckets: int = 0          # 60-minute post-age buckets (+ "older" + "missing"); 0 = no age input
    hour_of_day: bool = False     # the viewer's local hour at the user position (24 + "missing")
    # History action input with all num_actions columns, the last the clipped, scaled dwell time
    # (the reference's 19-column layout); False = v1's 18 action columns (dwell column fed 0).
    history_dwell: bool = False
    pad_user_slot: bool = False   # the user position is padding when its first hash is 0 (reference)
    candidate_post_ids: bool = True  # retriever: post-id hashes in the candidate tower (v1); v2 drops them
    # Ranker: the cosine of a candidate's content vector with the viewer's content profile (the
    # mean content of the history's positively engaged posts) in this many buckets over [-1, 1],
    # an embedding added to the candidate position; 0 = off.
    content_affinity_buckets: int = 0
    # Ranker: a learned per-action bias on the output logits, set to each action's log-odds in the
    # training data before training, so that rare actions (report, block) start calibrated
    # instead of at p = 0.5 and are not pushed up with every positive one.
    action_bias: bool = False
    # Ranker: the post's photo / video / kind codes (phoenix/post_kind.py) as embeddings added to
    # candidate and history positions (media-only actions, such as photo_expand, need them);
    # False for a config saved before the field, so old checkpoints predict as before.
    post_kind: bool = False

    def __post_init__(self) -> None:
        for name in ("content_dim", "sid_levels", "age_buckets", "content_affinity_buckets"):
            if getattr(self, name) < 0:
                raise ValueError(f"InputsConfig.{name} must be >= 0")
        if self.content_affinity_buckets and not self.content_dim:
            raise ValueError("InputsConfig.content_affinity_buckets needs content_dim")
        if self.sid_levels and self.sid_codes < 2:
            raise ValueError("InputsConfig.sid_codes must be >= 2 (code 0 is missing)")

    @property
    def age_rows(self) -> int:
        return self.age_buckets + 2 if self.age_buckets else 0


C = TypeVar("C")


def _from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Build a (possibly nested) config dataclass from a dict such as `dataclasses.asdict` gives."""
    known = {f.name: f for f in dataclasses.fields(cast("type[DataclassInstance]", cls))}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    kwargs = {}
    for name, value in data.items():
        nested = _NESTED.get(name)
        kwargs[name] = _from_dict(nested, value) if nested and isinstance(value, Mapping) else value
    return cls(**kwargs)


class _JsonMixin:
    """JSON for the config dataclasses it is mixed into."""
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(cast("DataclassInstance", self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        return _from_dict(cls, data)

    @classmethod
    def from_json(cls, s: str):
        return cls.from_dict(json.loads(s))


def _check_choice(owner: str, name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{owner}.{name} must be one of {choices}, got {value!r}")


@dataclass(frozen=True)
class RankerConfig(_JsonMixin):
    hash: HashConfig = field(default_factory=HashConfig)
    model: TransformerConfig = field(default_factory=TransformerConfig)
    history_len: int = 32
    num_candidates: int = 8  # the reference's per-pass candidate count (plain path chunking, training)
    num_actions: int = NUM_ACTIONS
    product_surface_vocab_size: int = 16
    prefix_attention: str = "causal"  # among user+history; candidates always see the prefix and themselves
    # "shared": every candidate at the position after the history (slot-independent scores);
    # "sequential": the reference's consecutive positions, restarting every num_candidates slots.
    candidate_positions: str = "shared"
    position_ids: str = "valid"
    inputs: InputsConfig = field(default_factory=InputsConfig)

    def __post_init__(self) -> None:
        _check_choice("RankerConfig", "prefix_attention", self.prefix_attention, PREFIX_ATTENTION)
        _check_choice("RankerConfig", "candidate_positions", self.candidate_positions, CANDIDATE_POSITIONS)
        _check_choice("RankerConfig", "position_ids", self.position_ids, POSITION_IDS)
        if self.num_actions < NUM_BINARY_ACTIONS:
            raise ValueError(f"RankerConfig.num_actions must be >= {NUM_BINARY_ACTIONS}")
        if self.history_len < 1 or self.num_candidates < 1:
            raise ValueError("RankerConfig.history_len and num_candidates must be >= 1")


@dataclass(frozen=True)
class RetrieverConfig(_JsonMixin):
    hash: HashConfig = field(default_factory=HashConfig)
    model: TransformerConfig = field(default_factory=TransformerConfig)
    history_len: int = 32
    num_actions: int = NUM_ACTIONS  # rows of the history action projection (reference layout)
    product_surface_vocab_size: int = 16
    prefix_attention: str = "causal"
    position_ids: str = "valid"
    candidate_hidden_size: int = 0  # candidate-tower MLP width; 0 = 2 * emb_size (reference)
    inputs: InputsConfig = field(default_factory=InputsConfig)
    # The user representation from the tower's outputs: "mean" of the valid positions (the
    # reference, v1) or the "last" position's output (sequential, as SASRec: with causal
    # attention every position is the user after that prefix, so one pass trains on all).
    user_pooling: str = "mean"

    def __post_init__(self) -> None:
        _check_choice("RetrieverConfig", "prefix_attention", self.prefix_attention, PREFIX_ATTENTION)
        _check_choice("RetrieverConfig", "position_ids", self.position_ids, POSITION_IDS)
        _check_choice("RetrieverConfig", "user_pooling", self.user_pooling, USER_POOLING)
        if self.num_actions < NUM_BINARY_ACTIONS:
            raise ValueError(f"RetrieverConfig.num_actions must be >= {NUM_BINARY_ACTIONS}")

    @property
    def embedding_dim(self) -> int:
        return self.model.emb_size

    @property
    def candidate_hidden(self) -> int:
        return self.candidate_hidden_size or 2 * self.model.emb_size


_NESTED: dict[str, type] = {"hash": HashConfig, "model": TransformerConfig, "inputs": InputsConfig}

# v2: content, semantic ids and context (docs/phoenix.md). 4 levels of 256 codes, post age in
# hours up to the 48-hour retention window. No foryou data knows a viewer's local hour (profiles
# carry no time zone), so the hour input stays off rather than always "missing".
V2_INPUTS = InputsConfig(content_dim=256, sid_levels=4, sid_codes=256, age_buckets=48, hour_of_day=False,
                         history_dwell=True, pad_user_slot=True, candidate_post_ids=False,
                         content_affinity_buckets=32, action_bias=True, post_kind=True)
# The reference's own input layout: 19 history action columns and a paddable user slot, ids only.
REFERENCE_INPUTS = InputsConfig(history_dwell=True, pad_user_slot=True)


# Presets ---------------------------------------------------------------------------------

def demo_ranker_config() -> RankerConfig:
    """The reference release's demo configuration (D=128, 2 layers, 2+2 heads of 64, S=32, C=8)."""
    return RankerConfig()


def serving_ranker_config() -> RankerConfig:
    """A larger serving config: D=256, 4 layers, GQA 4 query / 2 kv heads, history 512."""
    return RankerConfig(
        model=TransformerConfig(emb_size=256, num_layers=4, num_q_heads=4, num_kv_heads=2, key_size=64),
        history_len=512,
        num_candidates=32,
    )


_TINY_HASH = HashConfig(user_vocab_size=257, item_vocab_size=509, author_vocab_size=131)
_TINY_MODEL = TransformerConfig(emb_size=32, num_layers=2, num_q_heads=2, num_kv_heads=1, key_size=16)


def tiny_ranker_config(**overrides: Any) -> RankerConfig:
    """For tests: D=32, 2 layers, GQA 2/1 heads of 16, small tables, history 8, 4 candidates."""
    return dataclasses.replace(
        RankerConfig(hash=_TINY_HASH, model=_TINY_MODEL, history_len=8, num_candidates=4), **overrides
    )


def demo_retriever_config() -> RetrieverConfig:
    return RetrieverConfig()


def tiny_retriever_config(**overrides: Any) -> RetrieverConfig:
    return dataclasses.replace(RetrieverConfig(hash=_TINY_HASH, model=_TINY_MODEL, history_len=8), **overrides)
