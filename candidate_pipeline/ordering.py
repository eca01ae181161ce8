"""The column-order checks a Pipeline makes at construction: every column a component reads
has a writer earlier in the order (`reads`/`writes`, components.py); a parallel stage runs in
waves, a component after the ones of its stage whose columns it reads."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from candidate_pipeline.components import Component

C = TypeVar("C", bound=Component)  # one stage's component type, kept through `waves`


class ColumnOrderError(ValueError):
    """A component reads a column that nothing before it in the pipeline writes."""


def waves(stage: str, components: Sequence[C], available: set[str] | None) -> list[list[C]]:
    """Group a parallel stage into waves: a component runs after the components listed before
    it whose `writes` it `reads`. With `available` (the columns written before the stage), a
    read that neither an earlier stage nor an earlier component of this stage writes is an
    error. A read of something only a later component of the stage writes is always one."""
    wave_of: dict[int, int] = {}
    for position, component in enumerate(components):
        wave = 0
        for read in component.reads:
            writers = [i for i, other in enumerate(components[:position]) if read in other.writes]
            if writers:
                wave = max(wave, 1 + max(wave_of[i] for i in writers))
                continue
            later = [other.name for other in components[position + 1:] if read in other.writes]
            if later or (available is not None and read not in available):
                raise ColumnOrderError(order_message(component, stage, read, later))
        wave_of[position] = wave
    grouped: list[list[C]] = [[] for _ in range(1 + max(wave_of.values(), default=-1))]
    for position, component in enumerate(components):
        grouped[wave_of[position]].append(component)
    return grouped


def check_sequential(stage: str, components: Sequence[Component], available: set[str],
                     later_stages: Sequence[Component]) -> None:
    """A sequential stage: each component reads only what is `available` or written by the
    components before it; `available` gains the stage's writes. `later_stages`: the components
    of the sequential stages in pipeline order, to name a writer that comes too late."""
    for component in components:
        after = next((i + 1 for i, c in enumerate(later_stages) if c is component), 0)
        for read in component.reads:
            if read not in available:
                later = [c.name for c in later_stages[after:] if read in c.writes]
                raise ColumnOrderError(order_message(component, stage, read, later))
        available.update(component.writes)


def order_message(component: Component, stage: str, column: str, later: list[str]) -> str:
    message = f"{component.name} ({stage}) reads column {column!r}, which no component before it writes"
    if later:
        message += f"; {', '.join(later)} write{'s' if len(later) == 1 else ''} it later"
    return message
