"""`foryou bench pipeline_overhead`: the candidate-pipeline framework's own cost per request.

Ten near-zero-work components (2 sources of N/2 candidates, 2 hydrators, 3 filters, 2 scorers,
1 selector) run through `Pipeline.execute`, and the same component calls made directly by
straight-line code; the difference is what the framework adds (ordering, concurrency,
timeouts, error policy, timings, metrics). Target: under 1 ms at 1,000 candidates."""
from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass

from bench.common import percentiles_ms, print_table
from candidate_pipeline import Filter, FilterResult, Hydrator, Pipeline, Scorer, Selector, Source


@dataclass
class Query:
    user_id: int


@dataclass(slots=True)
class Post:
    id: int
    author: int = 0
    score: float = 0.0


class StaticSource(Source[Query, Post]):
    def __init__(self, name: str, posts: list[Post]):
        self.name, self.posts = name, posts

    async def get_candidates(self, query: Query) -> list[Post]:
        return list(self.posts)


class EchoHydrator(Hydrator[Query, Post]):
    def __init__(self, name: str):
        self.name = name

    async def hydrate(self, query: Query, candidates: list[Post]) -> list[Post]:
        return candidates

    def update(self, candidate: Post, hydrated: Post) -> None:
        candidate.author = hydrated.author


class KeepAll(Filter[Query, Post]):
    def __init__(self, name: str):
        self.name = name

    async def filter(self, query: Query, candidates: list[Post]) -> FilterResult[Post]:
        return FilterResult(kept=candidates, removed=[])


class EchoScorer(Scorer[Query, Post]):
    def __init__(self, name: str):
        self.name = name

    async def score(self, query: Query, candidates: list[Post]) -> list[Post]:
        return candidates

    def update(self, candidate: Post, scored: Post) -> None:
        candidate.score = scored.score


class FirstK(Selector[Query, Post]):
    def select(self, query: Query, candidates: list[Post]) -> list[Post]:
        return candidates[:50]


def build(candidates: int) -> Pipeline[Query, Post]:
    half = candidates // 2
    return Pipeline[Query, Post](
        name="bench_overhead",
        sources=[StaticSource("a", [Post(i) for i in range(half)]),
                 StaticSource("b", [Post(i) for i in range(half, candidates)])],
        hydrators=[EchoHydrator("h1"), EchoHydrator("h2")],
        filters=[KeepAll("f1"), KeepAll("f2"), KeepAll("f3")],
        scorers=[EchoScorer("s1"), EchoScorer("s2")],
        selector=FirstK(),
        result_size=35,
    )


async def direct(pipeline: Pipeline[Query, Post], query: Query) -> list[Post]:
    """The same component calls with no framework: the work the components themselves do."""
    candidates = []
    for source in pipeline.sources:
        candidates += await source.get_candidates(query)
    for hydrator in pipeline.hydrators:
        hydrated = await hydrator.hydrate(query, candidates)
        for candidate, record in zip(candidates, hydrated):
            hydrator.update(candidate, record)
    for filter_ in pipeline.filters:
        candidates = (await filter_.filter(query, candidates)).kept
    for scorer in pipeline.scorers:
        scored = await scorer.score(query, candidates)
        for candidate, record in zip(candidates, scored):
            scorer.update(candidate, record)
    return pipeline.selector.select(query, candidates)[: pipeline.result_size]


async def measure(requests: int, candidates: int, warmup: int) -> tuple[list[float], list[float]]:
    pipeline, query = build(candidates), Query(user_id=1)
    with_framework: list[float] = []
    without: list[float] = []
    for i in range(warmup + requests):
        # Interleaved, so both see the same machine conditions.
        started = time.perf_counter()
        result = await pipeline.execute(query, request_id="bench")
        middle = time.perf_counter()
        selected = await direct(pipeline, query)
        ended = time.perf_counter()
        assert len(result.selected) == len(selected) == min(35, candidates) and not result.errors
        if i >= warmup:
            with_framework.append(middle - started)
            without.append(ended - middle)
    return with_framework, without


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="foryou bench pipeline_overhead", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args(argv)
    with_framework, without = asyncio.run(measure(args.requests, args.candidates, args.warmup))
    overhead = [a - b for a, b in zip(with_framework, without)]
    rows = []
    for label, samples in [("Pipeline.execute", with_framework), ("components called directly", without),
                           ("framework overhead (per-request difference)", overhead)]:
        p50, p99 = percentiles_ms(samples)
        rows.append([label, p50, p99])
    print_table(f"candidate pipeline, 10 components, {args.candidates:,} candidates, {args.requests:,} requests",
                ["measure", "p50 ms", "p99 ms"], rows)
    return 0
