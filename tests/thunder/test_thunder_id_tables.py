"""Thunder's numpy id tables: the author -> row hash table and the request id sets."""
from __future__ import annotations

import random

import numpy as np

from thunder.id_tables import IdSet, RowIndex


def test_row_index_finds_every_author_across_growth():
    index = RowIndex(bits=2)
    rng = random.Random(7)
    keys = [0, 2**64 - 1] + rng.sample(range(1, 2**63), 500)
    for row, key in enumerate(keys):
        index.add(key, row)
    unknown = [k + 1 for k in keys[2:50] if k + 1 not in set(keys)]
    got = index.lookup(np.array(keys + unknown, dtype=np.uint64)).tolist()
    assert got == list(range(len(keys))) + [-1] * len(unknown)


def test_id_set_is_a_set_of_the_ids():
    ids = IdSet([5, 2**64 - 1, 5, 0, 7])
    assert list(ids) == [0, 5, 7, 2**64 - 1] and len(ids) == 4
    assert 7 in ids and 6 not in ids and 2**64 - 1 in ids
    assert ids.contains(np.array([0, 1, 7, 2**64 - 1, 8], np.uint64)).tolist() == [True, False, True, True, False]
    assert not IdSet([]).contains(np.array([0], np.uint64)).any() and 0 not in IdSet([])
