"""The ranker: shapes, the candidate-isolation mask, position semantics, padding invariance,
and the prefix-cache path against the plain full-sequence pass."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from phoenix.config import tiny_ranker_config
from phoenix.features import RankBatch, make_rank_batch, pad_rank_batch
from phoenix.ranker import ranker_logits_prefix_path
from phoenix.transformer import recsys_mask
from tests.phoenix_model.phoenix_model_helpers import compiled, params_for, random_candidates, random_history


def _batch(config, seed=0, users=3, cands=(5, 1, 8), hist=(8, 3, 0), width=8) -> RankBatch:
    rng = np.random.default_rng(seed)
    return make_rank_batch(config, [int(rng.integers(1, 10**9)) for _ in range(users)],
                           [random_history(rng, n) for n in hist[:users]],
                           [random_candidates(rng, n) for n in cands[:users]], num_candidates=width)


def _logits(config, batch, path="full"):
    full, fast, _ = compiled(config)
    return np.asarray((full if path == "full" else fast)(params_for(config), batch))


def test_output_shapes_and_dtypes(tiny_config, ranker_runtime):
    batch = _batch(tiny_config)
    logits = _logits(tiny_config, batch)
    assert logits.shape == (3, 8, 19) and logits.dtype == np.float32
    assert np.isfinite(logits).all()
    out = ranker_runtime.rank(1, random_history(np.random.default_rng(1), 4),
                              random_candidates(np.random.default_rng(2), 5))
    assert out.shape == (5, 19) and out.dtype == np.float32
    assert ((out[:, :18] > 0) & (out[:, :18] < 1)).all()  # probabilities; dwell_time is unbounded
    assert ranker_runtime.rank(1, [], []).shape == (0, 19)


def test_mask_isolates_candidates_and_never_reads_padding():
    prefix_valid = jnp.array([[True, True, True, False]])
    cand_valid = jnp.array([[True, True, False]])
    for causal in (True, False):
        m = np.asarray(recsys_mask(prefix_valid, cand_valid, causal))[0]
        assert m.shape == (7, 7)
        assert not m[:, 3].any()  # padded history slot: never attended
        assert not m[:, 6].any()  # padded candidate slot: never attended
        assert not m[:4, 4:].any()  # the prefix never reads candidates
        cands = m[4:, 4:]
        assert (cands == np.diag([True, True, False])).all()  # each candidate reads only itself
        assert m[4:6, :3].all()  # ... and the whole valid prefix
        assert m[:3, :3].all() != causal  # causal: lower triangle only
        if causal:
            assert (m[:3, :3] == np.tril(np.ones((3, 3), bool))).all()


def test_shared_positions_make_a_candidate_score_independent_of_slot_and_company(tiny_config):
    rng = np.random.default_rng(3)
    history, target = random_history(rng, 6), random_candidates(rng, 1)[0]
    others = random_candidates(rng, 511)
    alone = make_rank_batch(tiny_config, [7], [history], [[target]], num_candidates=512)
    last = make_rank_batch(tiny_config, [7], [history], [others[:300] + [target]], num_candidates=512)
    crowd = make_rank_batch(tiny_config, [7], [history], [others[:200] + [target] + others[200:]],
                            num_candidates=512)
    for path in ("full", "fast"):
        a = _logits(tiny_config, alone, path)[0, 0]
        np.testing.assert_allclose(_logits(tiny_config, last, path)[0, 300], a, atol=1e-5, rtol=0)
        np.testing.assert_allclose(_logits(tiny_config, crowd, path)[0, 200], a, atol=1e-5, rtol=0)


def test_sequential_positions_make_the_slot_matter():
    """The reference's sequential positions: the same candidate scores differently by slot
    (the reason foryou defaults to shared positions); the test above would fail here."""
    cfg = tiny_ranker_config(candidate_positions="sequential")
    rng = np.random.default_rng(4)
    history, cands = random_history(rng, 6), random_candidates(rng, 4)
    batch = make_rank_batch(cfg, [7, 7, 7], [history] * 3, [cands, cands[::-1], []], num_candidates=8)
    logits = _logits(cfg, batch)
    assert np.abs(logits[0, 0] - logits[1, 3]).max() > 1e-3


@pytest.mark.parametrize("prefix_attention", ["causal", "bidirectional"])
def test_causal_prefix_never_depends_on_later_history(prefix_attention):
    cfg = tiny_ranker_config(prefix_attention=prefix_attention)
    batch = _batch(cfg, seed=5, users=1, hist=(8,))
    changed = dataclasses.replace(batch, history_post_hashes=batch.history_post_hashes.copy())
    changed.history_post_hashes[0, 5] = changed.history_post_hashes[0, 5] % 100 + 1  # history slot 5 = position 6
    _, _, prefix = compiled(cfg)
    params = params_for(cfg)
    before = prefix(params, batch.user_batch()).layers[-1]
    after = prefix(params, changed.user_batch()).layers[-1]
    early = slice(0, 6)  # user + history slots 0..4
    diff = max(float(np.abs(np.asarray(getattr(after, f))[:, :, early] - np.asarray(getattr(before, f))[:, :, early]).max())
               for f in ("keys", "values"))
    if prefix_attention == "causal":
        assert diff == 0.0
    else:
        assert diff > 1e-4  # bidirectional: earlier positions do see the change
    # Either way the candidates see the whole history.
    assert np.abs(_logits(cfg, batch) - _logits(cfg, changed)).max() > 1e-4


@pytest.mark.parametrize("prefix_attention", ["causal", "bidirectional"])
@pytest.mark.parametrize("where", ["end", "middle"])
def test_padding_slots_change_nothing(prefix_attention, where):
    """Extra padded users, candidate slots and history slots (more than history_len, at the
    end or between real items) leave every real candidate's logits unchanged."""
    cfg = tiny_ranker_config(prefix_attention=prefix_attention)
    batch = _batch(cfg, seed=6, hist=(5, 2, 0), width=8)
    base = _logits(cfg, batch)
    wider = pad_rank_batch(batch, batch_size=4, num_candidates=16)
    fields = {}
    for name in ("history_post_hashes", "history_author_hashes", "history_actions", "history_surface"):
        arr = np.asarray(getattr(wider, name))
        pad = np.zeros((arr.shape[0], 4) + arr.shape[2:], arr.dtype)
        fields[name] = np.concatenate([arr, pad] if where == "end" else [arr[:, :1], pad, arr[:, 1:]], axis=1)
    padded = dataclasses.replace(wider, **fields)
    assert padded.history_post_hashes.shape[1] == 12
    for path in ("full", "fast"):
        np.testing.assert_allclose(_logits(cfg, padded, path)[:3, :8], base, atol=1e-5, rtol=0)
    # A slot is padding when its first post hash is 0, whatever else it holds: junk there is never read.
    # (Compared on real candidates only: a padding candidate's own output is meaningless.)
    real = batch.candidate_mask
    junk = _fill_padding_with_junk(padded)
    np.testing.assert_allclose(_logits(cfg, junk)[:3, :8][real], base[real], atol=1e-5, rtol=0)


def _fill_padding_with_junk(batch: RankBatch) -> RankBatch:
    rng = np.random.default_rng(99)
    out = {}
    for kind in ("history", "candidate"):
        pad = np.asarray(getattr(batch, f"{kind}_post_hashes"))[..., 0] == 0
        for name in (f"{kind}_post_hashes", f"{kind}_author_hashes", f"{kind}_surface", "history_actions"):
            if not name.startswith(kind):
                continue
            arr = np.array(getattr(batch, name))
            noise = rng.integers(1, 16, size=arr.shape).astype(arr.dtype)
            if name == "history_actions":
                noise = (noise > 8).astype(arr.dtype)
            if name.endswith("post_hashes"):
                noise[..., 0] = 0  # keep the slot marked as padding
            arr[pad] = noise[pad]
            out[name] = arr
    return dataclasses.replace(batch, **out)


@pytest.mark.parametrize("overrides", [
    {},
    {"prefix_attention": "bidirectional"},
    {"candidate_positions": "sequential"},
    {"position_ids": "slot"},
])
def test_prefix_path_equals_the_full_pass(overrides):
    cfg = tiny_ranker_config(**overrides)
    batch = _batch(cfg, seed=7, width=8)
    full, fast = _logits(cfg, batch, "full"), _logits(cfg, batch, "fast")
    assert np.abs(full - fast).max() < 1e-4
    assert np.abs(full).max() > 0.1  # not trivially zero
    if not overrides:  # also without the folded candidate tables
        plain_inputs = jax.jit(lambda p, b: ranker_logits_prefix_path(p, cfg, b))(params_for(cfg), batch)
        assert np.abs(full - np.asarray(plain_inputs)).max() < 1e-4


def test_runtime_paths_agree_across_chunks_and_micro_batches(ranker_runtime):
    rng = np.random.default_rng(8)
    history = random_history(rng, 7)
    cands = random_candidates(rng, 1030)  # more than one 1,024-candidate chunk
    fast = ranker_runtime.rank(9, history, cands)
    plain = ranker_runtime.rank_full_sequence(9, history, cands)
    assert fast.shape == plain.shape == (1030, 19)
    assert np.abs(fast - plain).max() < 1e-4
    # Chunked scoring equals scoring the same candidates in a smaller call.
    np.testing.assert_allclose(ranker_runtime.rank(9, history, cands[1025:]), fast[1025:], atol=1e-5, rtol=0)
    other = random_history(rng, 2)
    many = ranker_runtime.rank_many([(9, history, cands[:7]), (10, other, cands[:3]), (11, [], cands[5:6])])
    np.testing.assert_allclose(many[0], fast[:7], atol=1e-5, rtol=0)
    np.testing.assert_allclose(many[1], ranker_runtime.rank(10, other, cands[:3]), atol=1e-5, rtol=0)
    assert [m.shape[0] for m in many] == [7, 3, 1]


def test_sequential_prefix_path_matches_the_reference_style_passes():
    from phoenix.runtime import RankerRuntime
    cfg = tiny_ranker_config(candidate_positions="sequential")
    runtime = RankerRuntime(cfg, params_for(cfg))
    rng = np.random.default_rng(9)
    history, cands = random_history(rng, 5), random_candidates(rng, 11)
    assert np.abs(runtime.rank(3, history, cands) - runtime.rank_full_sequence(3, history, cands)).max() < 1e-4


def test_bfloat16_compute_runs_and_stays_close():
    cfg32 = tiny_ranker_config()
    cfg16 = tiny_ranker_config(model=dataclasses.replace(cfg32.model, dtype="bfloat16"))
    batch = _batch(cfg32, seed=10)
    params = params_for(cfg32)
    _, fast16, _ = compiled(cfg16)
    out = np.asarray(fast16(params, batch))
    assert out.dtype == np.float32 and np.isfinite(out).all()
    error = np.abs(out - _logits(cfg32, batch)).max()
    assert 0 < error < 0.5  # bfloat16 really was used, and stays close


def test_request_sizes_within_a_bucket_reuse_one_compiled_function(ranker_runtime):
    rng = np.random.default_rng(11)
    history = random_history(rng, 3)
    ranker_runtime.rank(1, history, random_candidates(rng, 2))
    compiled_before = ranker_runtime._rank_fn._cache_size()
    for n in (1, 5, 8):  # all in the 8-candidate bucket
        assert ranker_runtime.rank(2, random_history(rng, n), random_candidates(rng, n)).shape == (n, 19)
    assert ranker_runtime._rank_fn._cache_size() == compiled_before


def test_new_parameters_take_effect_on_both_paths(tiny_config):
    from phoenix.runtime import RankerRuntime
    runtime = RankerRuntime(tiny_config, params_for(tiny_config, seed=0))
    rng = np.random.default_rng(12)
    request = (4, random_history(rng, 3), random_candidates(rng, 6))
    before = runtime.rank(*request)
    runtime.params = params_for(tiny_config, seed=1)
    after = runtime.rank(*request)
    assert np.abs(after - before).max() > 1e-3
    assert np.abs(after - runtime.rank_full_sequence(*request)).max() < 1e-4


def test_shared_hash_tables_are_a_config_choice(tiny_config):
    cfg = dataclasses.replace(tiny_config, hash=dataclasses.replace(tiny_config.hash, shared_tables=True))
    params = params_for(cfg)
    tables = params["params"]["embeddings"]
    assert tables["post_tables"].shape == (1, cfg.hash.item_vocab_size, cfg.model.emb_size)
    assert tables["user_tables"].shape[0] == tables["author_tables"].shape[0] == 1
    batch = _batch(cfg, seed=13)
    full, fast = _logits(cfg, batch, "full"), _logits(cfg, batch, "fast")
    assert np.abs(full - fast).max() < 1e-4 and np.abs(full).max() > 0.1


def test_input_dropout_only_when_asked_and_reproducible_per_key(tiny_config):
    from phoenix.ranker import ranker_logits

    batch = _batch(tiny_config)
    params = params_for(tiny_config)
    plain = np.asarray(ranker_logits(params, tiny_config, batch))
    key = jax.random.PRNGKey(3)
    dropped = np.asarray(ranker_logits(params, tiny_config, batch, 0.5, key))
    assert np.abs(dropped - plain).max() > 1e-3
    np.testing.assert_array_equal(dropped, np.asarray(ranker_logits(params, tiny_config, batch, 0.5, key)))
    np.testing.assert_array_equal(plain, np.asarray(ranker_logits(params, tiny_config, batch, 0.0, key)))


def test_rotary_tables_read_the_values_a_pass_computes():
    """The constant tables (computed once per length) hold what sin and cos give in a pass."""
    from phoenix.layers import rotary, rotary_below

    positions = jnp.asarray([[0, 1, 2, 7, 7, 33], [5, 0, 0, 3, 32, 1]], jnp.float32)
    computed = jax.jit(lambda p: rotary(p, 64, 10000.0))(positions)
    read = jax.jit(lambda p: rotary_below(p, 34, 64, 10000.0))(positions)
    np.testing.assert_array_equal(np.asarray(read.cos), np.asarray(computed.cos))
    np.testing.assert_array_equal(np.asarray(read.sin), np.asarray(computed.sin))
    assert read.cos.shape == (2, 6, 1, 64)


def test_rms_norm_is_the_reference_formula():
    """RMSNorm's mean of squares is a matrix-vector product (phoenix/layers.py mean_square):
    the same numbers as scale * x / sqrt(mean(x**2) + eps), to float32 rounding."""
    from phoenix.layers import RMSNorm

    x = np.random.default_rng(3).normal(size=(2, 5, 128)).astype(np.float32) * 3.0
    scale = np.random.default_rng(4).normal(size=128).astype(np.float32)
    out = RMSNorm(1e-5).apply({"params": {"scale": scale}}, jnp.asarray(x))
    expected = scale * x / np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5, atol=1e-6)
