"""The models a Phoenix server runs: from the newest checkpoints in a directory, or a preset
with random weights when there is none; and the check for newer checkpoints (hot reload)."""
from __future__ import annotations

import logging
import typing
from dataclasses import dataclass, replace
from pathlib import Path

from phoenix import checkpoints, config as model_config
from phoenix.checkpoints import CheckpointRef
from phoenix.rerank import NO_SCORING, Scoring
from phoenix.runtime import RankerRuntime, RetrieverRuntime
from phoenix.settings import Preset

log = logging.getLogger(__name__)

PRESETS: tuple[str, ...] = typing.get_args(Preset)
# "small": the tiny transformer with hash tables big enough that a few hundred users and a
# few thousand posts rarely collide: trains in well under a minute on 2 cores, and learns
# the synthetic world nearly as well as "demo" (phoenix/training/README.md).
_SMALL_HASH = model_config.HashConfig(user_vocab_size=4096, item_vocab_size=16384, author_vocab_size=4096)


def preset_configs(preset: str):
    """(RankerConfig, RetrieverConfig) of a preset name."""
    if preset == "tiny":
        return model_config.tiny_ranker_config(), model_config.tiny_retriever_config()
    v2 = model_config.V2_INPUTS
    if preset == "small":
        return (model_config.tiny_ranker_config(hash=_SMALL_HASH, history_len=32, num_candidates=8, inputs=v2),
                model_config.tiny_retriever_config(hash=_SMALL_HASH, history_len=32, inputs=v2))
    if preset == "small-v1":  # the ids-only models the small preset trained before v2, for comparison
        return (model_config.tiny_ranker_config(hash=_SMALL_HASH, history_len=32, num_candidates=8),
                model_config.tiny_retriever_config(hash=_SMALL_HASH, history_len=32))
    if preset == "demo":
        return (replace(model_config.demo_ranker_config(), inputs=v2),
                replace(model_config.demo_retriever_config(), inputs=v2))
    if preset == "serving":
        retriever = getattr(model_config, "serving_retriever_config", model_config.demo_retriever_config)
        return replace(model_config.serving_ranker_config(), inputs=v2), replace(retriever(), inputs=v2)
    raise ValueError(f"unknown preset {preset!r}; choose one of {PRESETS}")


@dataclass(frozen=True)
class Models:
    ranker: RankerRuntime
    retriever: RetrieverRuntime
    ranker_ref: CheckpointRef | None
    retriever_ref: CheckpointRef | None
    preset: str
    scoring: Scoring = NO_SCORING  # the retriever checkpoint's fitted re-rank (scoring.json)

    @property
    def checkpoint_id(self) -> str:
        """e.g. "ranker-500+retriever-300"; "init-<preset>" for a randomly initialised model."""
        parts = [ref.checkpoint_id if ref else f"{kind}-init-{self.preset}"
                 for kind, ref in (("ranker", self.ranker_ref), ("retriever", self.retriever_ref))]
        return "+".join(parts)


def load_ranker(ref: CheckpointRef) -> RankerRuntime:
    cfg, params = checkpoints.load(ref)
    return RankerRuntime(cfg, params, checkpoints.load_codebook(ref))


def load_retriever(ref: CheckpointRef) -> RetrieverRuntime:
    cfg, params = checkpoints.load(ref)
    return RetrieverRuntime(cfg, params, checkpoints.load_codebook(ref))


def load_scoring(ref: CheckpointRef | None) -> Scoring:
    return Scoring.from_dict(checkpoints.load_scoring(ref) if ref else None)


def load_models(preset: str, checkpoint_dir: str | Path | None, seed: int = 0) -> Models:
    ranker_cfg, retriever_cfg = preset_configs(preset)
    ranker_ref = checkpoints.latest(checkpoint_dir, checkpoints.RANKER) if checkpoint_dir else None
    retriever_ref = checkpoints.latest(checkpoint_dir, checkpoints.RETRIEVER) if checkpoint_dir else None
    ranker = load_ranker(ranker_ref) if ranker_ref else RankerRuntime.init(ranker_cfg, seed)
    retriever = load_retriever(retriever_ref) if retriever_ref else RetrieverRuntime.init(retriever_cfg, seed)
    models = Models(ranker, retriever, ranker_ref, retriever_ref, preset, load_scoring(retriever_ref))
    log.info("models loaded: %s", models.checkpoint_id)
    return models


def _newer(current: CheckpointRef | None, found: CheckpointRef | None) -> bool:
    if found is None:
        return False
    return current is None or (found.step, found.stamp) != (current.step, current.stamp)


def newer_models(current: Models, checkpoint_dir: str | Path) -> tuple[Models, bool] | None:
    """A Models with whatever newer checkpoints the directory has, and whether the retriever
    changed (the corpus must then be re-embedded); None when nothing changed."""
    ranker_ref = checkpoints.latest(checkpoint_dir, checkpoints.RANKER)
    retriever_ref = checkpoints.latest(checkpoint_dir, checkpoints.RETRIEVER)
    new = current
    if ranker_ref is not None and _newer(current.ranker_ref, ranker_ref):
        new = replace(new, ranker=load_ranker(ranker_ref), ranker_ref=ranker_ref)
    retriever_changed = _newer(current.retriever_ref, retriever_ref)
    if retriever_ref is not None and retriever_changed:
        new = replace(new, retriever=load_retriever(retriever_ref), retriever_ref=retriever_ref,
                      scoring=load_scoring(retriever_ref))
    return (new, retriever_changed) if new is not current else None
