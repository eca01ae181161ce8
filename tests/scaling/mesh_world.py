"""The small fixed world and requests that tests/scaling's mesh scripts and tests share."""
from foryou.world import WorldConfig, generate_world
from phoenix.training.data import collect, rank_examples

WORLD = WorldConfig(num_users=60, days=1, impressions_per_user=30, seed=3, now_ms=1_790_000_000_000)
NUM_REQUESTS = 8


def events() -> list:
    return list(generate_world(WORLD).events())


def requests(config):
    """Ranking requests (a RankExamples table: user, history, candidates, time) from the world."""
    return rank_examples(collect(events()), config.history_len, config.num_candidates)[:NUM_REQUESTS]
