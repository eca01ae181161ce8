"""The model's outputs, in the documented order (docs/phoenix.md): 18 action probabilities then the dwell-time regression.

This is the one place the list lives; `foryou_protos.common_pb2.Action` numbers the same
actions from 1 (model index = enum value - 1), and each name is its enum name in lower case.
"""
from __future__ import annotations

ACTION_NAMES: tuple[str, ...] = (
    "favorite",
    "reply",
    "repost",
    "photo_expand",
    "click",
    "profile_click",
    "video_quality_view",
    "share",
    "share_via_dm",
    "share_via_copy_link",
    "dwell",
    "quote",
    "quoted_click",
    "follow_author",
    "not_interested",
    "block_author",
    "mute_author",
    "report",
    "dwell_time",
)
NUM_ACTIONS = len(ACTION_NAMES)
NUM_BINARY_ACTIONS = NUM_ACTIONS - 1
DWELL_TIME_INDEX = NUM_ACTIONS - 1
BINARY_ACTION_NAMES: tuple[str, ...] = ACTION_NAMES[:NUM_BINARY_ACTIONS]

assert NUM_ACTIONS == 19


def action_index(proto_action: int) -> int:
    """`common_pb2.Action` value (1..18) -> model action index (0..17)."""
    value = int(proto_action)
    if not 1 <= value <= NUM_BINARY_ACTIONS:
        raise ValueError(f"action {proto_action!r} is not a known engagement action (1..{NUM_BINARY_ACTIONS})")
    return value - 1


def proto_action(index: int) -> int:
    """Model action index (0..17) -> `common_pb2.Action` value."""
    if not 0 <= int(index) < NUM_BINARY_ACTIONS:
        raise ValueError(f"action index {index!r} out of range 0..{NUM_BINARY_ACTIONS - 1}")
    return int(index) + 1
