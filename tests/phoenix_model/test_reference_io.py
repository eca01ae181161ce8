"""Reference-layout parameter trees: exact round trips, validation, and the reference forward
semantics (checked against an independent numpy implementation of the documented formulas, docs/phoenix.md)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from phoenix.config import REFERENCE_INPUTS, InputsConfig, tiny_ranker_config, tiny_retriever_config
from phoenix.features import make_rank_batch
from phoenix.reference_io import (export_ranker_reference, export_retriever_reference, import_ranker_reference,
                                  import_retriever_reference, load_npz, save_npz)
from tests.phoenix_model.phoenix_model_helpers import compiled, params_for, random_candidates, random_history


def _reference_tree(config, seed):
    """A reference-layout tree with arbitrary values (as a reference checkpoint would be)."""
    exported = export_ranker_reference(params_for(config), config)
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=v.shape).astype(np.float32) for k, v in exported.items()}


def test_ranker_import_then_export_round_trips_exactly(tmp_path):
    cfg = tiny_ranker_config()
    tree = _reference_tree(cfg, seed=1)
    assert "transformer/decoder_layer_1/multi_head_attention/query/w" in tree
    assert tree["phoenix_model/proj_mat_2"].shape == (5 * 32, 32)  # 2 post + 2 author + surface
    params = import_ranker_reference(tree, cfg, base_params=params_for(cfg))
    back = export_ranker_reference(params, cfg)
    assert back.keys() == tree.keys()
    assert all(np.array_equal(back[k], tree[k]) for k in tree)
    save_npz(tmp_path / "ref.npz", back)
    loaded = load_npz(tmp_path / "ref.npz")
    assert loaded.keys() == tree.keys() and all(np.array_equal(loaded[k], tree[k]) for k in tree)
    # The two-level {module: {param: array}} form is accepted too.
    nested: dict = {}
    for key, value in tree.items():
        module, param = key.rsplit("/", 1)
        nested.setdefault(module, {})[param] = value
    again = export_ranker_reference(import_ranker_reference(nested, cfg, params_for(cfg)), cfg)
    assert all(np.array_equal(again[k], tree[k]) for k in tree)


def test_retriever_import_then_export_round_trips_exactly(retriever_runtime):
    cfg = retriever_runtime.config
    assert cfg == tiny_retriever_config()
    base = retriever_runtime.params
    exported = export_retriever_reference(base, cfg)
    key = "phoenix_retrieval_model/~build_candidate_representation/candidate_tower/candidate_tower_projection_1"
    assert exported[key].shape == (4 * 32, 64)
    rng = np.random.default_rng(2)
    tree = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in exported.items()}
    back = export_retriever_reference(import_retriever_reference(tree, cfg, base), cfg)
    assert back.keys() == tree.keys() and all(np.array_equal(back[k], tree[k]) for k in tree)


def test_import_rejects_missing_unknown_and_misshapen_keys():
    cfg = tiny_ranker_config()
    tree = _reference_tree(cfg, seed=3)
    base = params_for(cfg)
    missing = dict(tree)
    del missing["phoenix_model/unembeddings"]
    with pytest.raises(ValueError, match="unembeddings"):
        import_ranker_reference(missing, cfg, base)
    with pytest.raises(ValueError, match="decoder_layer_7"):
        import_ranker_reference({**tree, "transformer/decoder_layer_7/linear/w": np.zeros(1)}, cfg, base)
    with pytest.raises(ValueError, match="proj_mat_1"):
        import_ranker_reference({**tree, "phoenix_model/proj_mat_1": np.zeros((3, 3))}, cfg, base)


def test_tables_travel_with_include_tables():
    cfg = tiny_ranker_config()
    with_tables = export_ranker_reference(params_for(cfg, seed=0), cfg, include_tables=True)
    other = import_ranker_reference(with_tables, cfg, base_params=params_for(cfg, seed=1))
    rng = np.random.default_rng(4)
    batch = make_rank_batch(cfg, [1, 2, 3], [random_history(rng, 4)] * 3, [random_candidates(rng, 3)] * 3,
                            num_candidates=8)
    full, _, _ = compiled(cfg)
    np.testing.assert_array_equal(np.asarray(full(other, batch)), np.asarray(full(params_for(cfg), batch)))


# An independent, loop-based numpy forward of the reference ranker (spec: phoenix.md) ---------

def _rms(x, scale):
    return scale * x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-5)


def _rope(x, positions):
    k = x.shape[-1]
    inv = 1.0 / (10000.0 ** (np.arange(0, k, 2) / k))
    phase = np.concatenate([positions[:, None] * inv] * 2, axis=-1)[:, None, :]
    rotated = np.concatenate([-x[..., k // 2:], x[..., :k // 2]], axis=-1)
    return x * np.cos(phase) + rotated * np.sin(phase)


def _gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def _reference_logits(tree, tables, cfg, batch, row):
    m = cfg.model
    t = {k: v.astype(np.float64) for k, v in tree.items()}
    look = lambda name, hashes: np.concatenate([tables[name][i][h] for i, h in enumerate(hashes)])  # noqa: E731
    seq = [look("foryou/user_hash_tables", batch.user_hashes[row]) @ t["phoenix_model/proj_mat_1"]]
    # The reference: the user slot is padding when its first hash is 0; its history input has all
    # 19 action columns (the last the dwell). A v1 model (18 columns, user always valid) differs.
    valid = [batch.user_hashes[row, 0] != 0 if cfg.inputs.pad_user_slot else True]
    for s in range(batch.history_post_hashes.shape[1]):
        actions = batch.history_actions[row, s]
        actions = np.concatenate([actions, np.zeros(cfg.num_actions - actions.shape[0])])
        act = (2 * actions - 1) @ t["phoenix_model/action_projection"] * float(actions.any())
        surf = t["phoenix_model/product_surface_embedding_table"][batch.history_surface[row, s]]
        x = np.concatenate([look("foryou/post_hash_tables", batch.history_post_hashes[row, s]),
                            look("foryou/author_hash_tables", batch.history_author_hashes[row, s]), act, surf])
        seq.append(x @ t["phoenix_model/proj_mat_3"])
        valid.append(batch.history_post_hashes[row, s, 0] != 0)
    start = len(seq)
    for c in range(batch.candidate_post_hashes.shape[1]):
        surf = t["phoenix_model/product_surface_embedding_table"][batch.candidate_surface[row, c]]
        x = np.concatenate([look("foryou/post_hash_tables", batch.candidate_post_hashes[row, c]),
                            look("foryou/author_hash_tables", batch.candidate_author_hashes[row, c]), surf])
        seq.append(x @ t["phoenix_model/proj_mat_2"])
        valid.append(batch.candidate_post_hashes[row, c, 0] != 0)
    h, n = np.stack(seq), len(seq)
    mask = np.tril(np.ones((n, n), bool)) & np.array(valid)[None, :]
    mask[start:, start:] &= np.eye(n - start, dtype=bool)
    positions = np.arange(n, dtype=np.float64)
    groups = m.num_q_heads // m.num_kv_heads
    for i in range(m.num_layers):
        p = lambda name: t[f"transformer/decoder_layer_{i}/{name}"]  # noqa: E731
        x = _rms(h, p("rms_norm/scale"))
        q = _rope((x @ p("multi_head_attention/query/w")).reshape(n, m.num_q_heads, m.key_size), positions)
        k = _rope((x @ p("multi_head_attention/key/w")).reshape(n, m.num_kv_heads, m.key_size), positions)
        v = (x @ p("multi_head_attention/value/w")).reshape(n, m.num_kv_heads, m.key_size)
        heads = []
        for head in range(m.num_q_heads):
            logits = q[:, head] @ k[:, head // groups].T * m.attn_output_multiplier
            logits = np.where(mask, 30 * np.tanh(logits / 30), -1e30)
            w = np.exp(logits - logits.max(axis=1, keepdims=True))
            heads.append((w / w.sum(axis=1, keepdims=True)) @ v[:, head // groups])
        h = h + _rms(np.concatenate(heads, axis=1) @ p("multi_head_attention/linear/w"), p("rms_norm_1/scale"))
        x = _rms(h, p("rms_norm_2/scale"))
        y = (_gelu(x @ p("linear/w")) * (x @ p("linear_v/w"))) @ p("linear_1/w")
        h = h + _rms(y, p("rms_norm_3/scale"))
    return _rms(h, t["phoenix_model/rms_norm/scale"])[start:] @ t["phoenix_model/unembeddings"]


@pytest.mark.parametrize("inputs", ["v1", "reference"])
def test_imported_checkpoint_reproduces_the_reference_forward_pass(inputs):
    """Reference settings: sequential candidate positions by slot index, causal prefix. With the
    reference's inputs, histories carry non-zero dwell and one user slot is padding."""
    cfg = tiny_ranker_config(candidate_positions="sequential", position_ids="slot",
                             inputs=REFERENCE_INPUTS if inputs == "reference" else InputsConfig())
    tree = {k: v * 0.5 for k, v in _reference_tree(cfg, seed=5).items()}
    params = import_ranker_reference(tree, cfg, base_params=params_for(cfg))
    tables = {k: np.asarray(v, np.float64)
              for k, v in export_ranker_reference(params, cfg, include_tables=True).items() if k.startswith("foryou/")}
    rng = np.random.default_rng(6)
    histories = [random_history(rng, 8), random_history(rng, 3), random_history(rng, 2)]
    users = [11, 12, 13]
    if inputs == "reference":
        histories = [[dataclasses.replace(item, dwell_ms=int(rng.integers(0, 90_000))) for item in h]
                     for h in histories]
        histories[2] = [dataclasses.replace(item, actions=()) for item in histories[2]]  # dwell only
        users = [11, 0, 13]  # user 0: hash 0, a padded user slot
    batch = make_rank_batch(cfg, users, histories,
                            [random_candidates(rng, 8), random_candidates(rng, 5), random_candidates(rng, 1)],
                            num_candidates=8)
    if inputs == "reference":
        assert batch.history_actions.shape[-1] == 19 and (batch.history_actions[..., 18] > 0).sum() >= 8
        assert batch.user_hashes[1, 0] == 0
    full, fast, _ = compiled(cfg)
    ours = np.asarray(full(params, batch))
    for row, count in enumerate((8, 5, 1)):
        # num_candidates=4: the reference scores slots 0..3 and 4..7 in separate passes.
        for chunk in range(0, count, cfg.num_candidates):
            sub = make_rank_batch(cfg, [0], [[]], [[]], num_candidates=cfg.num_candidates)
            for name in ("candidate_post_hashes", "candidate_author_hashes", "candidate_surface"):
                getattr(sub, name)[0] = getattr(batch, name)[row, chunk:chunk + cfg.num_candidates]
            for name in ("user_hashes", "history_post_hashes", "history_author_hashes", "history_actions",
                         "history_surface"):
                getattr(sub, name)[0] = getattr(batch, name)[row]
            expected = _reference_logits(tree, tables, cfg, sub, 0)
            got = ours[row, chunk:chunk + cfg.num_candidates]
            n = min(cfg.num_candidates, count - chunk)
            np.testing.assert_allclose(got[:n], expected[:n], atol=1e-4, rtol=0)
    assert np.abs(np.asarray(fast(params, batch)) - ours).max() < 1e-4
