"""The synthetic world's oracle: one probability per impression and action, the very ones
its labels were drawn with, so they are calibrated and rank better than anything else."""
from __future__ import annotations

import numpy as np

from foryou.world import Oracle, WorldConfig, generate_world
from phoenix.evaluation.metrics import calibration, roc_auc


def test_oracle_probabilities_are_the_ones_the_labels_were_drawn_with(tmp_path):
    world = generate_world(WorldConfig(num_users=150, seed=4, now_ms=1_800_000_000_000))
    oracle = world.oracle
    impressions = sum(len(s.post_ids) for s in world.served)
    assert oracle.probs.shape == (impressions, 18)
    row = {(int(u), int(p)): i for i, (u, p) in enumerate(zip(oracle.user_ids, oracle.post_ids))}
    assert len(row) == impressions  # (user, post) names one impression
    labels = np.zeros_like(oracle.probs)
    for e in world.engagements:
        for a in e.actions:
            labels[row[(e.user_id, e.post_id)], a - 1] = 1
    for action in (0, 4, 10, 14):  # favorite, click, dwell, not_interested
        assert 0.85 < calibration(labels[:, action], oracle.probs[:, action]) < 1.15
        assert roc_auc(labels[:, action], oracle.probs[:, action]) > 0.7
    # impossible actions have probability 0 (no photo: no photo_expand)
    no_photo = np.array([world.post(int(p)).photo_count == 0 for p in oracle.post_ids])
    assert (oracle.probs[no_photo, 3] == 0).all() and labels[no_photo, 3].sum() == 0

    oracle.save(tmp_path / "o.npz")
    again = Oracle.load(tmp_path / "o.npz")
    assert np.array_equal(again.probs, oracle.probs) and np.array_equal(again.post_ids, oracle.post_ids)
