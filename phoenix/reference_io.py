"""Reference-layout parameter trees: import into, and export from, foryou's ranker and retriever.

The reference release stores `module/param -> float32 array` (spec: phoenix.md, "Reference
parameter layout"). Its hash-embedding tables live outside that tree, so import keeps the
tables of `base_params` (or of a fresh initialisation) unless the tree carries foryou's own
table keys (`foryou/...`, written by export with include_tables=True).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np
from flax import traverse_util

from phoenix.config import RankerConfig, RetrieverConfig
from phoenix.ranker import ranker_init_params
from phoenix.retriever import retriever_init_params

Tree = dict[str, np.ndarray]

_RANKER_TOP = {
    "embeddings/action_projection": "phoenix_model/action_projection",
    "embeddings/product_surface_embedding_table": "phoenix_model/product_surface_embedding_table",
    "embeddings/proj_user": "phoenix_model/proj_mat_1",
    "proj_candidate": "phoenix_model/proj_mat_2",
    "embeddings/proj_history": "phoenix_model/proj_mat_3",
    "unembeddings": "phoenix_model/unembeddings",
    "final_norm/scale": "phoenix_model/rms_norm/scale",
}
_RETRIEVER_TOP = {
    "embeddings/action_projection": "phoenix_retrieval_model/action_projection",
    "embeddings/product_surface_embedding_table": "phoenix_retrieval_model/product_surface_embedding_table",
    "embeddings/proj_user": "phoenix_retrieval_model/proj_mat_1",
    "embeddings/proj_history": "phoenix_retrieval_model/proj_mat_3",
    "candidate_tower_1": "phoenix_retrieval_model/~build_candidate_representation/candidate_tower/"
                         "candidate_tower_projection_1",
    "candidate_tower_2": "phoenix_retrieval_model/~build_candidate_representation/candidate_tower/"
                         "candidate_tower_projection_2",
}
_LAYER = {
    "attn_norm/scale": "rms_norm/scale",
    "query/kernel": "multi_head_attention/query/w",
    "key/kernel": "multi_head_attention/key/w",
    "value/kernel": "multi_head_attention/value/w",
    "attn_out/kernel": "multi_head_attention/linear/w",
    "post_attn_norm/scale": "rms_norm_1/scale",
    "ffn_norm/scale": "rms_norm_2/scale",
    "ffn/value_in/kernel": "linear_v/w",
    "ffn/gelu_in/kernel": "linear/w",
    "ffn/out/kernel": "linear_1/w",
    "post_ffn_norm/scale": "rms_norm_3/scale",
}
_TABLES = {
    "embeddings/user_tables": "foryou/user_hash_tables",
    "embeddings/post_tables": "foryou/post_hash_tables",
    "embeddings/author_tables": "foryou/author_hash_tables",
}


def _name_map(top: Mapping[str, str], num_layers: int) -> dict[str, str]:
    """foryou flat param name -> reference key."""
    names = dict(top)
    for i in range(num_layers):
        for ours, theirs in _LAYER.items():
            names[f"transformer/layers_{i}/{ours}"] = f"transformer/decoder_layer_{i}/{theirs}"
    return names


def flatten_reference(tree: Mapping[str, Any]) -> Tree:
    """Accept `{"module/param": array}` or the two-level `{module: {param: array}}` form."""
    flat: Tree = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            for param, array in value.items():
                flat[f"{key}/{param}"] = np.asarray(array)
        else:
            flat[key] = np.asarray(value)
    return flat


def _export(params: Any, names: Mapping[str, str], include_tables: bool) -> Tree:
    flat = traverse_util.flatten_dict(jax.device_get(params["params"]), sep="/")
    out = {theirs: np.array(flat[ours], dtype=np.float32) for ours, theirs in names.items()}
    if include_tables:
        out.update({theirs: np.array(flat[ours], dtype=np.float32) for ours, theirs in _TABLES.items()})
    return out


def _import(tree: Mapping[str, Any], names: Mapping[str, str], base_params: Any) -> Any:
    ref = flatten_reference(tree)
    flat = dict(traverse_util.flatten_dict(jax.device_get(base_params["params"]), sep="/"))
    known = set(names.values()) | set(_TABLES.values())
    unknown = sorted(set(ref) - known)
    if unknown:
        raise ValueError(f"reference tree has keys this config does not know: {unknown[:5]}")
    missing = sorted(set(names.values()) - set(ref))
    if missing:
        raise ValueError(f"reference tree lacks keys: {missing[:5]}")
    for ours, theirs in {**names, **_TABLES}.items():
        if theirs not in ref:
            continue  # hash tables: keep the base ones
        array = ref[theirs]
        if array.shape != flat[ours].shape:
            raise ValueError(f"{theirs}: shape {array.shape} does not match the config's {flat[ours].shape}")
        flat[ours] = np.array(array, dtype=np.float32)
    return {"params": traverse_util.unflatten_dict(flat, sep="/")}


def export_ranker_reference(params: Any, config: RankerConfig, include_tables: bool = False) -> Tree:
    return _export(params, _name_map(_RANKER_TOP, config.model.num_layers), include_tables)


def import_ranker_reference(tree: Mapping[str, Any], config: RankerConfig, base_params: Any = None) -> Any:
    base = base_params if base_params is not None else ranker_init_params(config, 0)
    return _import(tree, _name_map(_RANKER_TOP, config.model.num_layers), base)


def export_retriever_reference(params: Any, config: RetrieverConfig, include_tables: bool = False) -> Tree:
    return _export(params, _name_map(_RETRIEVER_TOP, config.model.num_layers), include_tables)


def import_retriever_reference(tree: Mapping[str, Any], config: RetrieverConfig, base_params: Any = None) -> Any:
    base = base_params if base_params is not None else retriever_init_params(config, 0)
    return _import(tree, _name_map(_RETRIEVER_TOP, config.model.num_layers), base)


def save_npz(path: str | Path, tree: Mapping[str, np.ndarray]) -> None:
    """Write a flat `module/param` tree as an .npz (keys joined by "/")."""
    with open(path, "wb") as f:
        arrays: dict[str, Any] = {k: np.asarray(v) for k, v in tree.items()}
        np.savez(f, **arrays)


def load_npz(path: str | Path) -> Tree:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


