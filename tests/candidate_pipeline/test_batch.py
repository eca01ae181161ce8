"""ColumnBatch: lazy take/mask, written columns winning over older copies, concat with
defaults, and the schema as the list of allowed columns."""
from __future__ import annotations

import numpy as np
import pytest

from candidate_pipeline import Column, ColumnBatch


class Batch(ColumnBatch):
    SCHEMA = {"id": Column(np.int64), "score": Column(np.float64), "name": Column(object, "?"),
              "factor": Column(np.float64, 1.0), "vector": Column(np.float32, None)}


def test_take_mask_and_rewrites_keep_the_newest_values_in_the_right_rows():
    batch = Batch(4, {"id": [10, 11, 12, 13], "name": ["a", "b", "c", "d"]})
    scored = batch.with_columns({"score": [0.1, 0.2, 0.3, 0.4]})
    assert "score" not in batch and "score" in scored              # with_columns never changes its input
    picked = scored.take([3, 1])
    assert picked["id"].tolist() == [13, 11] and picked["name"].tolist() == ["d", "b"]
    rescored = picked.with_columns({"score": [9.0, 8.0]})          # a rewrite of a column held in a group
    kept = rescored.mask(np.array([False, True]))
    assert kept["id"].tolist() == [11] and kept["score"].tolist() == [8.0]
    assert picked["score"].tolist() == [0.4, 0.2]                  # the earlier batch keeps its values
    again = kept.take([0, 0])                                      # takes compose
    assert again["id"].tolist() == [11, 11] and again["score"].tolist() == [8.0, 8.0]
    assert again.names == {"id", "name", "score"}


def test_defaults_concat_and_unknown_columns():
    a = Batch(2, {"id": [1, 2], "score": [0.5, 0.25]})
    b = Batch(1, {"id": [3], "name": ["z"]})
    both = Batch.concat([a, b])
    assert both["id"].tolist() == [1, 2, 3]
    assert both["score"].tolist() == [0.5, 0.25, 0.0]             # b never wrote it: the default there
    assert both["name"].tolist() == ["?", "?", "z"] and both["factor"].tolist() == [1.0, 1.0, 1.0]
    assert both.get("vector") is None                              # no default: absent
    with pytest.raises(KeyError, match="no default"):
        both["vector"]
    with pytest.raises(KeyError, match="no column 'colour'"):
        a.with_columns({"colour": [1, 2]})
    with pytest.raises(ValueError, match="'score' has 3 rows; the batch has 2"):
        a.with_columns({"score": [1.0, 2.0, 3.0]})
    assert len(Batch.concat([])) == 0
