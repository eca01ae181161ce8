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
from typing import Any, ClassVar, Self

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

    `take` and `mask` are lazy and cost the same whatever the number of columns: the columns
    stay in groups that share one row index (`_groups`: (rows, {name: base array})), and a
    column is gathered the first time it is read, so a filter reading two columns of thirty
    pays for two."""

    SCHEMA: ClassVar[Mapping[str, Column]] = {}
    __slots__ = ("_cache", "_columns", "_groups", "_length")

    def __init__(self, length: int, columns: Mapping[str, Any] | None = None) -> None:
        self._length = int(length)
        self._groups: tuple[tuple[np.ndarray, Mapping[str, np.ndarray]], ...] = ()
        self._columns: dict[str, np.ndarray] = {}  # written at this batch's rows
        self._cache: dict[str, np.ndarray] = {}    # gathered from a group when first read
        for name, values in (columns or {}).items():
            self._columns[name] = self._checked(name, values)

    # -- reading ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._length

    def __contains__(self, name: str) -> bool:
        """Was the column written (not only readable as its default)?"""
        return name in self._columns or any(name in group for _, group in self._groups)

    def __getitem__(self, name: str) -> np.ndarray:
        values = self.get(name)
        return values if values is not None else self._default(name, self._length)

    def get(self, name: str) -> np.ndarray | None:
        """The column if it was written, else None (for columns without a meaningful default)."""
        values = self._columns.get(name)
        if values is None:
            values = self._cache.get(name)
            if values is None:
                values = self._gathered(name)
        return values

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._columns).union(*(group for _, group in self._groups))

    def rows(self, *names: str) -> Iterable[tuple]:
        """Python values row by row, for the few places that need a per-candidate loop."""
        return zip(*(self[name].tolist() for name in names))

    # -- new batches -------------------------------------------------------------------------

    def with_columns(self, columns: Mapping[str, Any]) -> Self:
        new = self._empty_like(self._length)
        new._groups = self._groups
        new._columns = dict(self._columns)
        new._cache = {k: v for k, v in self._cache.items() if k not in columns}
        for name, values in columns.items():
            new._columns[name] = self._checked(name, values)  # wins over any group's older copy
        return new

    def take(self, indices: Sequence[int] | np.ndarray) -> Self:
        """The rows at `indices`, in that order."""
        indices = np.asarray(indices, dtype=np.intp)
        new = self._empty_like(len(indices))
        groups = [(rows[indices], group) for rows, group in self._groups]
        if self._columns:  # the columns written here become the newest group (read first)
            groups.append((indices, self._columns))
        new._groups = tuple(groups)
        return new

    def mask(self, keep: np.ndarray) -> Self:
        return self.take(keep.nonzero()[0])

    @classmethod
    def empty(cls) -> Self:
        return cls(0)

    @classmethod
    def concat(cls, batches: Sequence[Self]) -> Self:
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

    def _gathered(self, name: str) -> np.ndarray | None:
        for rows, group in reversed(self._groups):
            base = group.get(name)
            if base is not None:
                values = self._cache[name] = base[rows]
                return values
        return None

    def _empty_like(self, length: int) -> Self:
        new = object.__new__(type(self))
        new._length = length
        new._columns = {}
        new._cache = {}
        new._groups = ()
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
