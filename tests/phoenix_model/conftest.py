"""Session fixtures for the phoenix model tests (helpers live in phoenix_model_helpers.py)."""
from __future__ import annotations

import pytest

from phoenix.config import RankerConfig, tiny_ranker_config, tiny_retriever_config
from phoenix.runtime import RankerRuntime, RetrieverRuntime
from tests.phoenix_model.phoenix_model_helpers import params_for


@pytest.fixture(scope="session")
def tiny_config() -> RankerConfig:
    return tiny_ranker_config()


@pytest.fixture(scope="session")
def ranker_runtime(tiny_config) -> RankerRuntime:
    return RankerRuntime(tiny_config, params_for(tiny_config))


@pytest.fixture(scope="session")
def retriever_runtime() -> RetrieverRuntime:
    return RetrieverRuntime.init(tiny_retriever_config(), seed=0)
