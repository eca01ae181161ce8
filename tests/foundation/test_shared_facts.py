"""The facts several services share, each defined once: snowflake ids (one at a time and
vectorised agree), the action list (the proto enum's, in model order)."""
from __future__ import annotations

import numpy as np

from foryou import snowflake
from foryou.world import NUM_ACTIONS as WORLD_ACTIONS
from foryou_protos import common_pb2
from home_mixer.params import ACTION_NAMES as MIXER_ACTIONS
from phoenix.actions import ACTION_NAMES, NUM_BINARY_ACTIONS, action_index_of, proto_action


def test_vectorised_snowflakes_match_the_scalar_ones():
    now = snowflake.now_ms()
    times = [snowflake.TWITTER_EPOCH_MS, now - 86_400_000, now]
    low = [0, 5, (1 << 22) + 7]   # low bits beyond 22 are masked, as make_id does
    ids = snowflake.make_ids(times, low)
    assert ids.tolist() == [snowflake.make_id(t, b) for t, b in zip(times, low)]
    assert snowflake.created_at_ms_array(ids).tolist() == [snowflake.created_at_ms(int(i)) for i in ids] == times


def test_one_action_list_generated_from_the_enum():
    names = [n for n, v in sorted(common_pb2.Action.items(), key=lambda kv: kv[1]) if v]
    assert list(ACTION_NAMES) == [n.lower() for n in names] + ["dwell_time"]
    assert MIXER_ACTIONS == ACTION_NAMES and WORLD_ACTIONS == NUM_BINARY_ACTIONS == len(names)
    assert [proto_action(action_index_of(n)) for n in names] == [common_pb2.Action.Value(n) for n in names]
    assert np.all(np.diff([common_pb2.Action.Value(n) for n in names]) == 1)
