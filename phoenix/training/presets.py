"""Training presets: the model presets of phoenix/server_models.py, plus recipes tuned for one
kind of data, each a pair of model configs and the training defaults that go with them.

"movielens": explicit-rating data where every rating is a choice the user made (MovieLens-100k,
`foryou import movielens-100k`). The ranker is the "small" one; the retriever is "small"
trained sequentially (`user_pooling="last"`, every engagement a next-item target, as SASRec)
on favorites and clicks, with a wider embedding, for more steps at most (early stopping on the
training window's last 10% ends it; 400 steps stopped it while its validation loss still
fell), and without the freshness re-rank: a movie's "post age" is only the time since its
first rating, and the weight fitted on time-split recall lowered leave-last-out HR@10.
docs/phoenix.md has the measurements behind each value."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from phoenix.settings import Preset

TrainPreset = Literal[Preset, "movielens"]
DEFAULT_STEPS = 400
# The v2 ranker's step cap: with early stopping and its weight averaging (training/ranker.py) the
# validation loss of the README's worlds still fell at 400 steps; docs/phoenix.md has the runs.
RANKER_STEPS = 800


@dataclass(frozen=True)
class TrainRecipe:
    ranker: Any                            # RankerConfig
    retriever: Any                         # RetrieverConfig
    ranker_steps: int = RANKER_STEPS       # the most optimisation steps (early stopping may end sooner)
    retriever_steps: int = DEFAULT_STEPS
    positives: frozenset[int] | None = None  # the retriever's positive actions (None: favorite)
    freshness: bool = True                 # fit the retriever's freshness re-rank (retriever.py)

    def steps(self, model: str) -> int:
        return self.retriever_steps if model == "retriever" else self.ranker_steps

    def retriever_arguments(self, positives: frozenset[int] | None = None) -> dict:
        """retriever.train's keyword arguments this recipe (or `positives`, from a flag) sets."""
        chosen = positives or self.positives
        extra: dict = {"positives": chosen} if chosen else {}
        if not self.freshness:
            extra["freshness_weights"] = ()
        return extra


def train_recipe(preset: str) -> TrainRecipe:
    """The model configs and training defaults of a training preset name."""
    from foryou_protos import common_pb2
    from phoenix.server_models import preset_configs  # imports JAX: not at CLI start-up

    if preset == "movielens":
        ranker, retriever = preset_configs("small")
        model = dataclasses.replace(retriever.model, emb_size=64)
        return TrainRecipe(ranker, dataclasses.replace(retriever, user_pooling="last", model=model),
                           retriever_steps=2000, positives=frozenset({common_pb2.FAVORITE, common_pb2.CLICK}),
                           freshness=False)
    ranker, retriever = preset_configs(preset)
    from phoenix.training.ranker import is_v2
    # v1 keeps its fixed-step recipe
    return TrainRecipe(ranker, retriever, ranker_steps=RANKER_STEPS if is_v2(ranker) else DEFAULT_STEPS)
