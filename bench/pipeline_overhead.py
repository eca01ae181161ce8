"""`foryou bench pipeline_overhead`: the candidate-pipeline framework's own cost per request.

Fifteen light components over a columnar batch (1 query hydrator, 2 sources of N/2
candidates, 3 hydrators, 5 filters that each remove a few candidates, 3 scorers, 1 selector)
run through `Pipeline.execute`, and the same component calls made directly by straight-line
code doing the same batch operations (concat, with_columns, mask, take); the difference is
what the framework adds (column checks, waves, concurrency, timeouts, error policy,
provenance, timings, metrics). Target: under 0.5 ms p99 at 1,000 candidates."""
from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass, field

import numpy as np

from bench.common import percentiles_ms, print_table
from candidate_pipeline import (
    Column, ColumnBatch, Filter, Hydrator, Pipeline, QueryHydrator, Scorer, Selector, Source,
)


class Batch(ColumnBatch):
    SCHEMA = {"id": Column(np.int64), "author": Column(np.int64), "flag": Column(np.bool_),
              "weight": Column(np.float64), "score": Column(np.float64)}


@dataclass
class Query:
    user_id: int
    request_id: str = ""
    features: dict = field(default_factory=dict)


class Features(QueryHydrator[Query]):
    writes = ("features",)

    async def hydrate(self, query: Query) -> Query:
        return Query(query.user_id, features={"min_id": 3})

    def update(self, query: Query, hydrated: Query) -> None:
        query.features = hydrated.features


class StaticSource(Source[Query, Batch]):
    writes = ("id", "score")  # score: 0 until the scorers add to it

    def __init__(self, name: str, ids: np.ndarray):
        self.name, self.ids = name, ids

    async def get_candidates(self, query: Query) -> Batch:
        return Batch(len(self.ids), {"id": self.ids})


class ColumnHydrator(Hydrator[Query, Batch]):
    reads = ("id",)

    def __init__(self, name: str, column: str):
        self.name, self.writes, self.column = name, (column,), column

    async def hydrate(self, query: Query, candidates: Batch) -> dict:
        ids = candidates["id"]
        return {self.column: (ids % 7 if self.column == "author" else ids % 2 == 0 if self.column == "flag"
                              else ids * 0.001)}


class DropEvery(Filter[Query, Batch]):
    reads = ("id",)

    def __init__(self, name: str, modulus: int):
        self.name, self.modulus = name, modulus

    async def filter(self, query: Query, candidates: Batch) -> np.ndarray:
        return candidates["id"] % self.modulus != 1


class AddScorer(Scorer[Query, Batch]):
    reads = ("weight", "score")
    writes = ("score",)

    def __init__(self, name: str):
        self.name = name

    async def score(self, query: Query, candidates: Batch) -> dict:
        return {"score": candidates["score"] + candidates["weight"]}


class TopK(Selector[Query, Batch]):
    reads = ("score",)

    def select(self, query: Query, candidates: Batch) -> np.ndarray:
        return np.argsort(-candidates["score"], kind="stable")[:50]


def build(candidates: int) -> Pipeline[Query, Batch]:
    half = candidates // 2
    ids = np.arange(candidates, dtype=np.int64)
    return Pipeline[Query, Batch](
        name="bench_overhead",
        batch_type=Batch,
        query_hydrators=[Features()],
        sources=[StaticSource("a", ids[:half]), StaticSource("b", ids[half:])],
        hydrators=[ColumnHydrator("h_author", "author"), ColumnHydrator("h_flag", "flag"),
                   ColumnHydrator("h_weight", "weight")],
        filters=[DropEvery(f"f{m}", m) for m in (101, 103, 107, 109, 113)],
        scorers=[AddScorer("s1"), AddScorer("s2"), AddScorer("s3")],
        selector=TopK(),
        result_size=35,
    )


async def direct(pipeline: Pipeline[Query, Batch], query: Query) -> Batch:
    """The same component calls with no framework: the work the components themselves do."""
    for hydrator in pipeline.query_hydrators:
        hydrator.update(query, await hydrator.hydrate(query))
    candidates = Batch.concat([await source.get_candidates(query) for source in pipeline.sources])
    updates = [await hydrator.hydrate(query, candidates) for hydrator in pipeline.hydrators]
    for columns in updates:
        candidates = candidates.with_columns(columns)
    for filter_ in pipeline.filters:
        keep = await filter_.filter(query, candidates)
        candidates.mask(~keep)  # what the framework records as removed
        candidates = candidates.mask(keep)
    for scorer in pipeline.scorers:
        candidates = candidates.with_columns(await scorer.score(query, candidates))
    selector = pipeline.selector
    assert selector is not None  # build() gives it one
    return candidates.take(selector.select(query, candidates)[: pipeline.result_size])


async def measure(requests: int, candidates: int, warmup: int) -> dict[str, list[float]]:
    """Wall and CPU (this thread's) seconds per request, with and without the framework."""
    pipeline = build(candidates)
    samples: dict[str, list[float]] = {"wall": [], "wall_direct": [], "cpu": [], "cpu_direct": []}
    wall, cpu = time.perf_counter, time.thread_time
    for i in range(warmup + requests):
        # Interleaved, so both see the same machine conditions.
        w0, c0 = wall(), cpu()
        result = await pipeline.execute(Query(user_id=1), request_id="bench")
        w1, c1 = wall(), cpu()
        selected = await direct(pipeline, Query(user_id=1))
        w2, c2 = wall(), cpu()
        assert len(result.selected) == len(selected) == min(35, candidates) and not result.errors
        if i >= warmup:
            for name, value in (("wall", w1 - w0), ("wall_direct", w2 - w1), ("cpu", c1 - c0), ("cpu_direct", c2 - c1)):
                samples[name].append(value)
    return samples


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="foryou bench pipeline_overhead", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args(argv)
    samples = asyncio.run(measure(args.requests, args.candidates, args.warmup))
    rows = []
    for clock in ("wall", "cpu"):
        overhead = [a - b for a, b in zip(samples[clock], samples[f"{clock}_direct"])]
        for label, values in [("Pipeline.execute", samples[clock]), ("components called directly", samples[f"{clock}_direct"]),
                              ("framework overhead (per-request difference)", overhead)]:
            p50, p99 = percentiles_ms(values)
            rows.append([clock, label, p50, p99])
    print_table(f"candidate pipeline, 15 components, {args.candidates:,} candidates, {args.requests:,} requests",
                ["clock", "measure", "p50 ms", "p99 ms"], rows)
    load = os.getloadavg()
    print(f"load average (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; "
          "CPU is this thread's time (time.thread_time), less disturbed by other processes than wall time")
    return 0
