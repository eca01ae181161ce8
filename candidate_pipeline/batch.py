"""A columnar batch of candidates: equal-length numpy arrays by name.

The pipeline moves candidates as one batch instead of one object per candidate, so a filter
is a vectorised keep mask and a scorer writes whole columns; per-candidate Python happens only
where the logic needs it (a keyword match, a walk in score order).

`ColumnBatch` knows nothing of posts. A subclass names its columns in `SCHEMA` (dtype, default,
trailing shape): a column that no component wrote reads as its default (zeros, unless the
schema says otherwise), so a batch from a source that does not know a field concatenates with
one that does. Ragged or text columns are numpy object arrays (`take` works the same).
Columns are never modified in place: `with_columns` returns a new batch sharing the others.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class Column:
    """How a column is stored and what it reads as before anyone wrote it."""
    dtype: Any
    default: Any = 0              # None: no default (absent reads as None through `get`)
    shape: tuple[int, ...] = ()   # trailing dimensions of the default, e.g. (num_actions,)
    doc: str = ""


class ColumnBatch:
    """Candidates as named columns of one length. `SCHEMA` (set by a subclass) lists every
    column a component may read or write; an unknown name is an error, not a silent new column.

    `take` and `mask` are lazy: a column is gathered the first time it is read, so a filter
    that reads two columns of thirty pays for two."""

    SCHEMA: ClassVar[Mapping[str, Column]] = {}
    __slots__ = ("_columns", "_lazy", "_length")

    def __init__(self, length: int, columns: Mapping[str, Any] | None = None) -> None:
        self._length = int(length)
        self._lazy: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # name -> (base, row indices)
        self._columns: dict[str, np.ndarray] = {}
        for name, values in (columns or {}).items():
            self._columns[name] = self._checked(name, values)

    # -- reading ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._length

    def __contains__(self, name: str) -> bool:
        """Was the column written (not only readable as its default)?"""
        return name in self._columns or name in self._lazy

    def __getitem__(self, name: str) -> np.ndarray:
        values = self._columns.get(name)
        if values is None:
            values = self._materialized(name)
        return values if values is not None else self._default(name, self._length)

    def get(self, name: str) -> np.ndarray | None:
        """The column if it was written, else None (for columns without a meaningful default)."""
        values = self._columns.get(name)
        return values if values is not None else self._materialized(name)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._columns) | frozenset(self._lazy)

    def rows(self, *names: str) -> Iterable[tuple]:
        """Python values row by row, for the few places that need a per-candidate loop."""
        return zip(*(self[name].tolist() for name in names))

    # -- new batches -------------------------------------------------------------------------

    def with_columns(self, columns: Mapping[str, Any]) -> "ColumnBatch":
        new = self._empty_like(self._length)
        new._columns = dict(self._columns)
        new._lazy = dict(self._lazy)
        for name, values in columns.items():
            new._columns[name] = self._checked(name, values)
            new._lazy.pop(name, None)
        return new

    def take(self, indices: Sequence[int] | np.ndarray) -> "ColumnBatch":
        """The rows at `indices`, in that order."""
        indices = np.asarray(indices, dtype=np.intp)
        new = self._empty_like(len(indices))
        composed: dict[int, np.ndarray] = {}  # columns taken together share one index array
        for name, (base, rows) in self._lazy.items():
            key = id(rows)
            if key not in composed:
                composed[key] = rows[indices]
            new._lazy[name] = (base, composed[key])
        for name, values in self._columns.items():
            new._lazy[name] = (values, indices)
        return new

    def mask(self, keep: np.ndarray) -> "ColumnBatch":
        return self.take(np.flatnonzero(keep))

    @classmethod
    def empty(cls) -> "ColumnBatch":
        return cls(0)

    @classmethod
    def concat(cls, batches: Sequence["ColumnBatch"]) -> "ColumnBatch":
        """Rows of every batch, in order; a column some batches lack is their default there."""
        batches = [b for b in batches if len(b)]
        if not batches:
            return cls.empty()
        if len(batches) == 1:
            return batches[0]
        names = sorted(set().union(*(b.names for b in batches)))
        total = sum(len(b) for b in batches)
        columns = {name: np.concatenate([b[name] for b in batches]) for name in names}
        return cls(total, columns)

    # -- internals ---------------------------------------------------------------------------

    def _materialized(self, name: str) -> np.ndarray | None:
        pending = self._lazy.pop(name, None)
        if pending is None:
            return None
        base, rows = pending
        values = self._columns[name] = base[rows]
        return values

    def _empty_like(self, length: int) -> "ColumnBatch":
        new = object.__new__(type(self))
        new._length = length
        new._columns = {}
        new._lazy = {}
        return new

    def _spec(self, name: str) -> Column:
        spec = self.SCHEMA.get(name)
        if spec is None:
            raise KeyError(f"{type(self).__name__} has no column {name!r}")
        return spec

    def _default(self, name: str, length: int) -> np.ndarray:
        spec = self._spec(name)
        if spec.default is None:
            raise KeyError(f"column {name!r} was not written and has no default (use .get)")
        if spec.dtype is object:
            values = np.empty(length, dtype=object)
            values.fill(spec.default)
            return values
        return np.full((length, *spec.shape), spec.default, dtype=spec.dtype)

    def _checked(self, name: str, values: Any) -> np.ndarray:
        spec = self._spec(name)
        if spec.dtype is object:
            if not (isinstance(values, np.ndarray) and values.dtype == object):
                array = np.empty(len(values), dtype=object)
                array[:] = list(values)
                values = array
        else:
            values = np.asarray(values, dtype=spec.dtype)
        if len(values) != self._length:
            raise ValueError(f"column {name!r} has {len(values)} rows; the batch has {self._length}")
        return values
