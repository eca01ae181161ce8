"""The model's outputs, in the documented order (docs/phoenix.md): one probability per
engagement action, then the dwell-time regression.

The one place the list lives, generated from the contract: `foryou_protos.common_pb2.Action`
numbers the engagement actions from 1 (model index = enum value - 1), and each output name is
its enum name in lower case. HomeMixer's weights and the synthetic world read it from here.
"""
from __future__ import annotations

from foryou_protos import common_pb2

_ENUM: tuple[tuple[str, int], ...] = tuple(
    sorted(((name, value) for name, value in common_pb2.Action.items() if value), key=lambda kv: kv[1]))
assert [value for _, value in _ENUM] == list(range(1, len(_ENUM) + 1)), "Action values must run 1..N"

BINARY_ACTION_NAMES: tuple[str, ...] = tuple(name.lower() for name, _ in _ENUM)
ACTION_NAMES: tuple[str, ...] = BINARY_ACTION_NAMES + ("dwell_time",)
NUM_ACTIONS = len(ACTION_NAMES)
NUM_BINARY_ACTIONS = NUM_ACTIONS - 1
DWELL_TIME_INDEX = NUM_ACTIONS - 1
# Negative feedback (proto values): never a positive engagement, and the retriever's hard negatives.
NEGATIVE_ACTIONS = frozenset({common_pb2.NOT_INTERESTED, common_pb2.BLOCK_AUTHOR,
                              common_pb2.MUTE_AUTHOR, common_pb2.REPORT})


def action_index(proto_action: int) -> int:
    """`common_pb2.Action` value (1..N) -> model action index (0..N-1)."""
    value = int(proto_action)
    if not 1 <= value <= NUM_BINARY_ACTIONS:
        raise ValueError(f"action {proto_action!r} is not a known engagement action (1..{NUM_BINARY_ACTIONS})")
    return value - 1


def action_index_of(enum_name: str) -> int:
    """Model action index of an Action enum name ("FAVORITE" -> 0)."""
    return action_index(common_pb2.Action.Value(enum_name))


def proto_action(index: int) -> int:
    """Model action index (0..N-1) -> `common_pb2.Action` value."""
    if not 0 <= int(index) < NUM_BINARY_ACTIONS:
        raise ValueError(f"action index {index!r} out of range 0..{NUM_BINARY_ACTIONS - 1}")
    return int(index) + 1
