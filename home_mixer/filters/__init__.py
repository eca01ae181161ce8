"""The pre-scoring and post-selection filters, one per file."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from candidate_pipeline import FilterResult

C = TypeVar("C")


def split(candidates: Iterable[C], keep: Callable[[C], bool]) -> FilterResult[C]:
    kept, removed = [], []
    for candidate in candidates:
        (kept if keep(candidate) else removed).append(candidate)
    return FilterResult(kept=kept, removed=removed)
