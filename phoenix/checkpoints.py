"""Self-describing model checkpoints (orbax), one directory per saved step:

    DIR/ranker/<step>/config.json     the model config (RankerConfig.to_json)
    DIR/ranker/<step>/params/         the parameter tree, saved with orbax
    DIR/ranker/<step>/metrics.json    training and held-out metrics (optional)
    DIR/retriever/<step>/scoring.json how to score with it, fitted after training, e.g.
                                      {"freshness_weight": 0.2} (optional; absent = defaults)
    DIR/ranker/<step>/sid_codebook.npz the semantic-id codebooks (v2 models with semantic ids)
    DIR/retriever/<step>/...          the same for the retriever

A step directory is assembled under a temporary name and renamed into place, so a reader
(the server polling for new checkpoints) never sees a half-written one.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from phoenix.config import RankerConfig, RetrieverConfig
from phoenix.sid import Codebook
from phoenix.training import distributed

RANKER = "ranker"
RETRIEVER = "retriever"
CONFIG_CLASSES: dict[str, type[RankerConfig] | type[RetrieverConfig]] = {RANKER: RankerConfig, RETRIEVER: RetrieverConfig}


@dataclass(frozen=True)
class CheckpointRef:
    kind: str          # "ranker" or "retriever"
    step: int
    path: Path
    stamp: int         # mtime_ns of the step directory: a re-saved step counts as newer

    @property
    def checkpoint_id(self) -> str:
        return f"{self.kind}-{self.step}"


def save(root: str | Path, kind: str, step: int, params, config, metrics: dict | None = None,
         scoring: dict | None = None, codebook: Codebook | None = None) -> CheckpointRef:
    """`scoring` defaults to the "scoring" entry of the metrics (what train() fitted), `codebook`
    to its "codebook" entry (a Codebook, not written into metrics.json)."""
    if kind not in CONFIG_CLASSES:
        raise ValueError(f"kind must be one of {sorted(CONFIG_CLASSES)}, got {kind!r}")
    kind_dir = Path(root).absolute() / kind
    kind_dir.mkdir(parents=True, exist_ok=True)
    # Training in several processes (phoenix/training/distributed.py): they all write the
    # parameters (orbax: each its own shards) into one directory; process 0 writes the rest.
    tmp = kind_dir / f".tmp-{step}-{distributed.agreed_token()}"
    if not distributed.is_primary():
        ref = _save_params(tmp, params, kind_dir / str(step))
        assert ref is not None  # a process other than 0 gets the step process 0 put in place
        return ref
    tmp.mkdir()
    (tmp / "config.json").write_text(config.to_json())
    if metrics is not None and "codebook" in metrics:
        codebook = codebook or metrics["codebook"]
        metrics = {k: v for k, v in metrics.items() if k != "codebook"}
    if config.inputs.sid_levels and codebook is None:
        raise ValueError("a model with semantic-id inputs needs its codebook saved with it")
    if codebook is not None:
        codebook.save(tmp)
    if metrics is not None:
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    if scoring is None and metrics is not None:
        scoring = metrics.get("scoring")
    if scoring is not None:
        (tmp / "scoring.json").write_text(json.dumps(scoring, indent=2, default=float))
    final = kind_dir / str(step)
    _save_params(tmp, params, final)
    if final.exists():  # retraining to the same step replaces it
        shutil.rmtree(final)
    os.replace(tmp, final)
    distributed.barrier(f"checkpoint {final} in place")
    return _ref(kind, final)


def _save_params(tmp: Path, params, final: Path) -> CheckpointRef | None:
    """Sharded jax.Arrays are written as they are (each process its own shards): no host copy
    of the whole tree, and the checkpoint loads on any mesh shape (`load`)."""
    distributed.barrier(f"checkpoint {tmp} created")  # process 0 made the directory
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp / "params", jax.tree.map(lambda a: a if isinstance(a, jax.Array) else np.asarray(a), params))
    checkpointer.wait_until_finished()
    if distributed.is_primary():
        return None
    distributed.barrier(f"checkpoint {final} in place")
    return _ref(final.parent.name, final)


def _ref(kind: str, path: Path) -> CheckpointRef:
    return CheckpointRef(kind, int(path.name), path, path.stat().st_mtime_ns)


def latest(root: str | Path, kind: str) -> CheckpointRef | None:
    """The checkpoint with the highest step (newest save on a tie), or None."""
    kind_dir = Path(root) / kind
    if not kind_dir.is_dir():
        return None
    refs = []
    for path in kind_dir.iterdir():
        if path.name.isdigit() and (path / "config.json").is_file() and (path / "params").is_dir():
            try:
                refs.append(_ref(kind, path))
            except FileNotFoundError:  # replaced while we looked
                continue
    return max(refs, key=lambda r: (r.step, r.stamp), default=None)


def load(ref: CheckpointRef):
    """(config, params) of a checkpoint; params as numpy arrays in the saved tree."""
    config = CONFIG_CLASSES[ref.kind].from_json((ref.path / "config.json").read_text())
    checkpointer = ocp.StandardCheckpointer()
    path = ref.path.absolute() / "params"
    # Restored onto this process's first device whatever mesh saved it (a target is needed:
    # without one orbax refuses sharded arrays saved on a different device topology).
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                          checkpointer.metadata(path).item_metadata.tree)
    return config, jax.tree.map(np.asarray, checkpointer.restore(path, target))


def load_scoring(ref: CheckpointRef) -> dict:
    path = ref.path / "scoring.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def load_metrics(ref: CheckpointRef) -> dict:
    path = ref.path / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def load_codebook(ref: CheckpointRef) -> Codebook | None:
    return Codebook.load(ref.path)
