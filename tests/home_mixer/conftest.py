"""HomeMixer integration fixtures (the world and the stack are built in hm_stack.py)."""
from __future__ import annotations

import pytest

from hm_stack import build_world, running_stack


@pytest.fixture(scope="module")
async def stack(kafka):
    # Generous deadlines: the CI machine has 2 shared cores and Phoenix runs on CPU.
    async with running_stack(kafka, build_world(), [
            "--thunder-timeout-s", "5", "--phoenix-timeout-s", "20", "--request-budget-s", "30"]) as s:
        yield s
