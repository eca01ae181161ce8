"""HomeMixer integration fixtures (the world and the processes are built in hm_stack.py): one
world with its Thunder and Phoenix for the session, and per test module a HomeMixer in front
of them with that module's flags."""
from __future__ import annotations

import pytest

from tests.home_mixer.hm_stack import build_world, running_services, running_stack


@pytest.fixture(scope="session")
async def hm_services(kafka):
    async with running_services(kafka, build_world()) as services:
        yield services


@pytest.fixture(scope="module")
async def stack(hm_services):
    # Generous deadlines: the CI machine has 2 shared cores and Phoenix runs on CPU.
    async with running_stack(hm_services, [
            "--thunder-timeout-s", "5", "--phoenix-timeout-s", "20", "--request-budget-s", "30"]) as s:
        yield s
